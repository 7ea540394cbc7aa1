// AVX-512 VNNI int8 GEMM: vpdpbusd multiplies 4 unsigned activation codes by 4 signed weights
// and adds the 4 products into each int32 lane. A tile is MR tokens x NP panels of 16 rows:
// per step of 4 columns, NP panel loads, MR broadcasts and MR·NP vpdpbusd (8 x 2 by default,
// 16 int32 accumulators). The float epilogue runs once per activation group, through a small
// float tile in memory so that the accumulators keep the registers.
#include <immintrin.h>

#include <cstring>

#include "kernels/int8_gemm.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")

namespace tquant::int8 {
namespace {

int32_t i32_at(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <int MR, int NP>
void tile(const Int8Activations& a, const Int8Weight& w, int64_t t0, int64_t p0, int64_t r1, float* y) {
  const int64_t G = w.groups(), steps = w.kp / 4;
  alignas(64) float f[MR][NP * 16] = {};
  for (int64_t g = 0; g < G; ++g) {
    __m512i acc[MR][NP];
    for (int t = 0; t < MR; ++t)
      for (int j = 0; j < NP; ++j) acc[t][j] = _mm512_setzero_si512();
    const uint8_t* at = a.codes.data() + t0 * a.kp;
    for (int64_t k = w.group_begin[g]; k < w.group_begin[g + 1]; k += 4) {
      __m512i b[NP];
      for (int j = 0; j < NP; ++j) b[j] = _mm512_loadu_si512(w.panels.data() + ((p0 + j) * steps + k / 4) * 64);
      for (int t = 0; t < MR; ++t) {
        const __m512i av = _mm512_set1_epi32(i32_at(at + t * a.kp + k));
        for (int j = 0; j < NP; ++j) acc[t][j] = _mm512_dpbusd_epi32(acc[t][j], av, b[j]);
      }
    }
    for (int j = 0; j < NP; ++j) {
      const __m512i rs = _mm512_loadu_si512(w.row_sum.data() + g * w.np + (p0 + j) * 16);
      for (int t = 0; t < MR; ++t) {
        const int64_t p = (a.per_row ? (t0 + t) * G : 0) + g;
        const __m512i centred = _mm512_sub_epi32(acc[t][j], _mm512_mullo_epi32(_mm512_set1_epi32(a.offset[p]), rs));
        const __m512 v = _mm512_fmadd_ps(_mm512_set1_ps(a.scale[p]), _mm512_cvtepi32_ps(centred),
                                         _mm512_load_ps(&f[t][j * 16]));
        _mm512_store_ps(&f[t][j * 16], v);
      }
    }
  }
  for (int j = 0; j < NP; ++j) {
    const int64_t r = (p0 + j) * 16;
    const int64_t valid = r1 - r < 16 ? r1 - r : 16;
    const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
    const __m512 sw = _mm512_loadu_ps(w.scale.data() + r);
    for (int t = 0; t < MR; ++t)
      _mm512_mask_storeu_ps(y + (t0 + t) * w.n + r, mask, _mm512_mul_ps(sw, _mm512_load_ps(&f[t][j * 16])));
  }
}

template <int NP>
void all_tokens(const Int8Activations& a, const Int8Weight& w, int64_t p0, int64_t r1, float* y) {
  int64_t t = 0;
  for (; t + 8 <= a.m; t += 8) tile<8, NP>(a, w, t, p0, r1, y);
  for (; t + 4 <= a.m; t += 4) tile<4, NP>(a, w, t, p0, r1, y);
  for (; t < a.m; ++t) tile<1, NP>(a, w, t, p0, r1, y);
}

}  // namespace

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
void gemm_avx512(const Int8Activations& a, const Int8Weight& w, int64_t r0, int64_t r1, float* y) {
  int64_t p = r0 / 16;
  const int64_t p_end = (r1 + 15) / 16;
  for (; p + 2 <= p_end; p += 2) all_tokens<2>(a, w, p, r1, y);
  if (p < p_end) all_tokens<1>(a, w, p, r1, y);
}

}  // namespace tquant::int8

#pragma GCC pop_options
