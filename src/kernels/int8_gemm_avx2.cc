// AVX2 int8 GEMM without VNNI. vpmaddubsw would saturate (two 255·127 products overflow int16),
// so codes and weights are widened to int16 and multiplied with vpmaddwd, whose pairwise sums
// fit int32 exactly. A tile is 2 tokens x 4 rows over 16 columns per step; the integer sums are
// exact, so the shared float epilogue (int8_gemm.h) makes the result equal the scalar one.
#include <immintrin.h>

#include <cmath>

#include "kernels/int8_gemm.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace tquant::int8 {
namespace {

int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

template <int MR, int NR>
void tile(const Int8Activations& a, const Int8Weight& w, int64_t t0, int64_t r0, float* y) {
  const int64_t G = w.groups();
  float f[MR][NR] = {};
  for (int64_t g = 0; g < G; ++g) {
    __m256i acc[MR][NR];
    for (int t = 0; t < MR; ++t)
      for (int i = 0; i < NR; ++i) acc[t][i] = _mm256_setzero_si256();
    for (int64_t k = w.group_begin[g]; k < w.group_begin[g + 1]; k += 16) {
      __m256i av[MR];
      for (int t = 0; t < MR; ++t)
        av[t] = _mm256_cvtepu8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.codes.data() + (t0 + t) * a.kp + k)));
      for (int i = 0; i < NR; ++i) {
        const __m256i bv = _mm256_cvtepi8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.rows.data() + (r0 + i) * w.kp + k)));
        for (int t = 0; t < MR; ++t) acc[t][i] = _mm256_add_epi32(acc[t][i], _mm256_madd_epi16(av[t], bv));
      }
    }
    for (int t = 0; t < MR; ++t) {
      const int64_t p = (a.per_row ? (t0 + t) * G : 0) + g;
      for (int i = 0; i < NR; ++i) {
        const int32_t centred = hsum(acc[t][i]) - a.offset[p] * w.row_sum[g * w.np + r0 + i];
        f[t][i] = std::fma(a.scale[p], static_cast<float>(centred), f[t][i]);
      }
    }
  }
  for (int t = 0; t < MR; ++t)
    for (int i = 0; i < NR; ++i) y[(t0 + t) * w.n + r0 + i] = w.scale[r0 + i] * f[t][i];
}

template <int NR>
void all_tokens(const Int8Activations& a, const Int8Weight& w, int64_t r0, float* y) {
  int64_t t = 0;
  for (; t + 2 <= a.m; t += 2) tile<2, NR>(a, w, t, r0, y);
  if (t < a.m) tile<1, NR>(a, w, t, r0, y);
}

}  // namespace

__attribute__((target("avx2,fma,f16c")))
void gemm_avx2(const Int8Activations& a, const Int8Weight& w, int64_t r0, int64_t r1, float* y) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) all_tokens<4>(a, w, r, y);
  for (; r < r1; ++r) all_tokens<1>(a, w, r, y);
}

}  // namespace tquant::int8

#pragma GCC pop_options
