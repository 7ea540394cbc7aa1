#include "kernels/qblock_formats.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "io/half.h"
#include "wquant/packing.h"

namespace tquant {
namespace {

uint16_t u16_at(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

int64_t ggml_block_bytes(QFormat f) {
  switch (f) {
    case QFormat::Q4_0: return 18;
    case QFormat::Q4_1: return 20;
    case QFormat::Q8_0: return 34;
    case QFormat::Packed: break;
  }
  fail("ggml_block_bytes: not a ggml block format");
}

// Code k of a Packed row: bits [k·bits, (k+1)·bits) of its little-endian stream.
uint32_t packed_code(const uint8_t* row, int64_t k, int bits) {
  const int64_t bit = k * bits;
  uint32_t v = row[bit / 8];
  if ((bit % 8) + bits > 8) v |= static_cast<uint32_t>(row[bit / 8 + 1]) << 8;
  return (v >> (bit % 8)) & ((1u << bits) - 1);
}

}  // namespace

const char* qformat_name(QFormat f) {
  switch (f) {
    case QFormat::Q4_0: return "q4_0";
    case QFormat::Q4_1: return "q4_1";
    case QFormat::Q8_0: return "q8_0";
    case QFormat::Packed: return "packed";
  }
  return "?";
}

int64_t PackedMatrix::storage_bytes() const {
  return rows * row_bytes + static_cast<int64_t>((scale.size() + zero.size()) * sizeof(float));
}

float PackedMatrix::weight(int64_t r, int64_t c) const {
  const uint8_t* p = row(r);
  if (format == QFormat::Packed) {
    const int64_t g = r * groups_per_row() + c / group;
    return scale[g] * (static_cast<float>(packed_code(p, c, bits)) - zero[g]);
  }
  const uint8_t* blk = p + (c / kBlock) * ggml_block_bytes(format);
  const int j = static_cast<int>(c % kBlock);
  const float d = f16_to_f32(u16_at(blk));
  switch (format) {
    case QFormat::Q4_0: {
      const int q = j < 16 ? (blk[2 + j] & 0xF) : (blk[2 + j - 16] >> 4);
      return static_cast<float>(q - 8) * d;
    }
    case QFormat::Q4_1: {
      const int q = j < 16 ? (blk[4 + j] & 0xF) : (blk[4 + j - 16] >> 4);
      return static_cast<float>(q) * d + f16_to_f32(u16_at(blk + 2));
    }
    case QFormat::Q8_0:
      return static_cast<float>(static_cast<int8_t>(blk[2 + j])) * d;
    case QFormat::Packed: break;
  }
  return 0.f;
}

void PackedMatrix::dequantize_row(int64_t r, float* out) const {
  for (int64_t c = 0; c < cols; ++c) out[c] = weight(r, c);
}

Tensor PackedMatrix::dequantize() const {
  Tensor w = Tensor::uninitialized({rows, cols});
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) dequantize_row(r, w.data() + r * cols);
  return w;
}

PackedMatrix PackedMatrix::from_ggml(QFormat format, int64_t rows, int64_t cols, std::span<const uint8_t> blocks,
                                     std::string_view where) {
  if (format == QFormat::Packed) fail("{}: from_ggml needs a ggml block format", where);
  if (rows < 0 || cols <= 0 || cols % kBlock != 0)
    fail("{}: a {} matrix needs a positive multiple of {} columns, got [{}, {}]", where, qformat_name(format), kBlock,
         rows, cols);
  PackedMatrix m;
  m.format = format;
  m.rows = rows;
  m.cols = cols;
  m.bits = format == QFormat::Q8_0 ? 8 : 4;
  m.group = kBlock;
  m.row_bytes = cols / kBlock * ggml_block_bytes(format);
  if (static_cast<int64_t>(blocks.size()) != rows * m.row_bytes)
    fail("{}: {} bytes of {} blocks, but [{}, {}] needs {}", where, blocks.size(), qformat_name(format), rows, cols,
         rows * m.row_bytes);
  // A NaN or Inf d (or m) would poison every product with its row: refuse it here, as the
  // float32 loader refuses non-finite weights.
  const int64_t bb = ggml_block_bytes(format), per_row = cols / kBlock;
  for (int64_t b = 0; b < rows * per_row; ++b) {
    const uint8_t* blk = blocks.data() + b * bb;
    const bool bad_d = (u16_at(blk) & 0x7c00u) == 0x7c00u;
    const bool bad_m = format == QFormat::Q4_1 && (u16_at(blk + 2) & 0x7c00u) == 0x7c00u;
    if (bad_d || bad_m)
      fail("{}: block {} of row {} has a non-finite {} ({})", where, b % per_row, b / per_row, bad_d ? "d" : "m",
           f16_to_f32(u16_at(blk + (bad_d ? 0 : 2))));
  }
  m.data.assign(static_cast<size_t>(rows * m.row_bytes + kTailPadding), 0);
  if (!blocks.empty()) std::memcpy(m.data.data(), blocks.data(), blocks.size());
  return m;
}

PackedMatrix PackedMatrix::from_codes(int bits, int64_t group, int64_t rows, int64_t cols,
                                      std::span<const uint8_t> codes, std::span<const float> scale,
                                      std::span<const float> zero, std::string_view where) {
  if (bits < 2 || bits > 8) fail("{}: {}-bit codes are not supported (2..8)", where, bits);
  if (rows < 0 || cols <= 0) fail("{}: bad shape [{}, {}]", where, rows, cols);
  if (group == 0) group = cols;
  if (group < 0 || cols % group != 0) fail("{}: group size {} does not divide {} columns", where, group, cols);
  const int64_t G = rows * (cols / group);
  if (static_cast<int64_t>(scale.size()) != G || static_cast<int64_t>(zero.size()) != G)
    fail("{}: {} scales and {} zero points given, [{}, {}] with group {} needs {}", where, scale.size(), zero.size(),
         rows, cols, group, G);
  const float maxq = static_cast<float>((1 << bits) - 1);
  for (int64_t i = 0; i < G; ++i) {
    if (!std::isfinite(scale[i]) || !(scale[i] > 0.f))
      fail("{}: scale {} of row {}, group {} is not finite and positive", where, scale[i], i / (cols / group),
           i % (cols / group));
    if (!(zero[i] >= 0.f && zero[i] <= maxq) || zero[i] != std::nearbyint(zero[i]))
      fail("{}: zero point {} of row {}, group {} is not an integer in 0..{}", where, zero[i], i / (cols / group),
           i % (cols / group), maxq);
  }
  PackedMatrix m;
  m.format = QFormat::Packed;
  m.rows = rows;
  m.cols = cols;
  m.bits = bits;
  m.group = group;
  m.row_bytes = wq::packed_row_bytes(cols, bits);
  m.data = wq::pack_codes(codes, rows, cols, bits, where);
  m.data.resize(m.data.size() + kTailPadding, 0);
  m.scale.assign(scale.begin(), scale.end());
  m.zero.assign(zero.begin(), zero.end());
  return m;
}

PackedMatrix PackedMatrix::permuted_rows(std::span<const int64_t> perm) const {
  if (static_cast<int64_t>(perm.size()) != rows) fail("permuted_rows: {} indices for {} rows", perm.size(), rows);
  PackedMatrix m = *this;
  const int64_t G = format == QFormat::Packed ? groups_per_row() : 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t src = perm[r];
    if (src < 0 || src >= rows) fail("permuted_rows: index {} outside 0..{}", src, rows - 1);
    std::memcpy(m.data.data() + r * row_bytes, row(src), static_cast<size_t>(row_bytes));
    for (int64_t g = 0; g < G; ++g) {
      m.scale[r * G + g] = scale[src * G + g];
      m.zero[r * G + g] = zero[src * G + g];
    }
  }
  return m;
}

}  // namespace tquant
