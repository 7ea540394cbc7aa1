// AVX2 kernels for packed_matmul: 32 weights decode as four ymm parts of 8, and each part
// multiplies up to 2 tokens (4 rows x 2 tokens of accumulators fit the 16 ymm registers).
// Compiled for AVX2 + FMA + F16C through the target pragma below; only called when the CPU has it.
#include "kernels/simd_bytes.h"

#include "kernels/qgemv.h"
#include "kernels/qgemv_dispatch.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace tquant::qgemv {
namespace {

using simd::half_at;
using simd::u32_at;

__m256i bytes8_u32(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// Each decoder returns weights [32c + 8·part, 32c + 8·part + 8) of row r, computed as
// PackedMatrix::weight computes them (this file is built with -ffp-contract=off).
template <QFormat F, int Bits>
struct Decode;

template <>
struct Decode<QFormat::Q4_0, 4> {
  __m256 operator()(const PackedMatrix& w, int64_t r, int64_t c, int part) const {
    const uint8_t* blk = w.row(r) + c * 18;
    // Byte j holds element j (low nibble) and j + 16 (high nibble).
    const __m256i v = bytes8_u32(blk + 2 + 8 * (part & 1));
    const __m256i q = part < 2 ? _mm256_and_si256(v, _mm256_set1_epi32(15)) : _mm256_srli_epi32(v, 4);
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, _mm256_set1_epi32(8))), _mm256_set1_ps(half_at(blk)));
  }
};

template <>
struct Decode<QFormat::Q4_1, 4> {
  __m256 operator()(const PackedMatrix& w, int64_t r, int64_t c, int part) const {
    const uint8_t* blk = w.row(r) + c * 20;
    const __m256i v = bytes8_u32(blk + 4 + 8 * (part & 1));
    const __m256i q = part < 2 ? _mm256_and_si256(v, _mm256_set1_epi32(15)) : _mm256_srli_epi32(v, 4);
    return _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(half_at(blk))),
                         _mm256_set1_ps(half_at(blk + 2)));
  }
};

template <>
struct Decode<QFormat::Q8_0, 8> {
  __m256 operator()(const PackedMatrix& w, int64_t r, int64_t c, int part) const {
    const uint8_t* blk = w.row(r) + c * 34;
    const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 2 + 8 * part)));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(half_at(blk)));
  }
};

// tquant codes: part i of a 32-code chunk is the 8 codes at byte offset i·Bits (a 32-bit word
// below 8 bits, spread over the lanes and shifted by j·Bits).
template <int Bits>
struct Decode<QFormat::Packed, Bits> {
  __m256 operator()(const PackedMatrix& w, int64_t r, int64_t c, int part) const {
    const uint8_t* p = w.row(r) + c * 4 * Bits + part * Bits;
    const int64_t g = r * w.groups_per_row() + (c * 32) / w.group;
    __m256i q;
    if constexpr (Bits == 8) {
      q = bytes8_u32(p);
    } else {
      const __m256i shifts = _mm256_setr_epi32(0, Bits, 2 * Bits, 3 * Bits, 4 * Bits, 5 * Bits, 6 * Bits, 7 * Bits);
      q = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(u32_at(p))), shifts),
                           _mm256_set1_epi32((1 << Bits) - 1));
    }
    const __m256i z = _mm256_set1_epi32(static_cast<int32_t>(w.zero[g]));
    return _mm256_mul_ps(_mm256_set1_ps(w.scale[g]), _mm256_cvtepi32_ps(_mm256_sub_epi32(q, z)));
  }
};

template <int R, int T, class Decode>
void tile(const Decode& dec, const PackedMatrix& w, const float* x, int64_t r0, int64_t t0, float* y) {
  const int64_t C = w.cols, chunks = C / 32;
  __m256 acc[R][T];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();
  for (int64_t c = 0; c < chunks; ++c)
    for (int part = 0; part < 4; ++part) {
      __m256 wv[R];
      for (int i = 0; i < R; ++i) wv[i] = dec(w, r0 + i, c, part);
      for (int t = 0; t < T; ++t) {
        const __m256 xv = _mm256_loadu_ps(x + (t0 + t) * C + c * 32 + part * 8);
        for (int i = 0; i < R; ++i) acc[i][t] = _mm256_fmadd_ps(wv[i], xv, acc[i][t]);
      }
    }
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < T; ++t) {
      // A fixed reduction tree: (l0+l4) (l1+l5) (l2+l6) (l3+l7), then pairs.
      const __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[i][t]), _mm256_extractf128_ps(acc[i][t], 1));
      const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
      const float sum = _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
      float tail = 0.f;
      const float* xt = x + (t0 + t) * C;
      for (int64_t k = chunks * 32; k < C; ++k) tail += w.weight(r0 + i, k) * xt[k];
      y[(t0 + t) * w.rows + r0 + i] = sum + tail;
    }
}

template <int R, class Decode>
void rows_all_tokens(const Decode& dec, const PackedMatrix& w, const float* x, int64_t tokens, int64_t r, float* y) {
  int64_t t = 0;
  for (; t + 2 <= tokens; t += 2) tile<R, 2>(dec, w, x, r, t, y);
  if (t < tokens) tile<R, 1>(dec, w, x, r, t, y);
}

template <class Decode>
void run(const Decode& dec, const PackedMatrix& w, const float* x, int64_t tokens, int64_t r0, int64_t r1, float* y) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) rows_all_tokens<4>(dec, w, x, tokens, r, y);
  for (; r < r1; ++r) rows_all_tokens<1>(dec, w, x, tokens, r, y);
}

}  // namespace

__attribute__((target("avx2,fma,f16c")))
void matmul_avx2(const PackedMatrix& w, const float* x, int64_t tokens, int64_t r0, int64_t r1, float* y) {
  if (!with_decoder<Decode, 2, 3, 4, 8>(w, [&](auto dec) { run(dec, w, x, tokens, r0, r1, y); }))
    matmul_scalar(w, x, tokens, r0, r1, y);
}

}  // namespace tquant::qgemv

#pragma GCC pop_options
