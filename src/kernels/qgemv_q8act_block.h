#pragma once
// The definition of packed_matmul_q8act (qgemv_q8act.h) one 32-weight block at a time: the
// scalar kernel is built from these functions alone, and the SIMD kernels use them for the
// blocks their vector loops leave over and for the final tree, so the rule exists once.
//
// Internal linkage on purpose: the SIMD files compile this under their target options, and a
// shared (inline, external) copy could be one the linker takes from an AVX-512 file.
#include <cmath>
#include <cstdint>

#include "io/half.h"
#include "kernels/qblock_formats.h"
#include "kernels/qgemv_q8act.h"

namespace tquant::q8act {
namespace {

// Partial sums per output: block b goes to b % kLanes.
constexpr int kLanes = 16;

inline uint16_t u16_at(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

inline int64_t ggml_block_bytes(QFormat f) { return f == QFormat::Q4_0 ? 18 : f == QFormat::Q4_1 ? 20 : 34; }

// Code k of a tquant row: bits [k·bits, (k+1)·bits) of its little-endian stream.
inline int packed_code(const uint8_t* row, int64_t k, int bits) {
  const int64_t bit = k * bits;
  uint32_t v = row[bit / 8];
  if ((bit % 8) + bits > 8) v |= static_cast<uint32_t>(row[bit / 8 + 1]) << 8;
  return static_cast<int>((v >> (bit % 8)) & ((1u << bits) - 1));
}

// The exact integer of block b of row r against the 32 activation codes xq (whose sum is xsum):
// Σ (q_w − zero)·q_x, zero being 8 for Q4_0, the group's zero point for tquant codes, 0 otherwise.
inline int32_t block_int(const PackedMatrix& w, int64_t r, int64_t b, const int8_t* xq, int32_t xsum) {
  const uint8_t* row = w.row(r);
  int32_t s = 0;
  switch (w.format) {
    case QFormat::Q4_0:
    case QFormat::Q4_1: {
      const uint8_t* codes = row + b * ggml_block_bytes(w.format) + (w.format == QFormat::Q4_0 ? 2 : 4);
      for (int j = 0; j < 16; ++j) s += (codes[j] & 0xF) * xq[j] + (codes[j] >> 4) * xq[j + 16];
      return w.format == QFormat::Q4_0 ? s - 8 * xsum : s;
    }
    case QFormat::Q8_0: {
      // Σ q_w·q_x as Σ (q_w + 128)·q_x − 128·Σ q_x, unsigned × signed bytes: under an AVX512-VNNI
      // target GCC 12 vectorizes the plain signed × signed loop into vpdpbusd, which treats the
      // first operand as unsigned, and gets it wrong.
      const uint8_t* codes = row + b * 34 + 2;
      for (int j = 0; j < 32; ++j) s += (codes[j] ^ 0x80) * xq[j];
      return s - 128 * xsum;
    }
    case QFormat::Packed: {
      for (int j = 0; j < 32; ++j) s += packed_code(row, b * 32 + j, w.bits) * xq[j];
      const float zero = w.zero[r * w.groups_per_row() + b * 32 / w.group];
      return s - static_cast<int32_t>(zero) * xsum;
    }
  }
  return 0;
}

// The weight side of block b's coefficient: d (ggml) or the group's scale s.
inline float block_scale(const PackedMatrix& w, int64_t r, int64_t b) {
  if (w.format == QFormat::Packed) return w.scale[r * w.groups_per_row() + b * 32 / w.group];
  return f16_to_f32(u16_at(w.row(r) + b * ggml_block_bytes(w.format)));
}

// Q4_1's m (0 for every other format).
inline float block_min(const PackedMatrix& w, int64_t r, int64_t b) {
  return w.format == QFormat::Q4_1 ? f16_to_f32(u16_at(w.row(r) + b * 20 + 2)) : 0.f;
}

// Block b's contribution to its partial sum.
inline void accumulate(float& acc, QFormat f, float dw, float m, float dx, int32_t i, int32_t xsum) {
  acc = std::fma(dw * dx, static_cast<float>(i), acc);
  if (f == QFormat::Q4_1) acc = std::fma(m * dx, static_cast<float>(xsum), acc);
}

// Adds lanes i and i + h for h = 8, 4, 2, 1 (the tree every level ends with).
inline float reduce_lanes(float* acc) {
  for (int h = kLanes / 2; h >= 1; h /= 2)
    for (int i = 0; i < h; ++i) acc[i] += acc[i + h];
  return acc[0];
}

}  // namespace
}  // namespace tquant::q8act
