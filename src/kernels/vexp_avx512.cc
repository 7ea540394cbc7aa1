// AVX-512 kernels for vexp.h: 16 floats per step, which are exactly the definition's 16 partial
// sums (two vectors of 8 doubles); the last, partial step goes through masked loads and stores,
// its absent lanes adding +0.0 to their sums, which leaves them unchanged. Compiled for AVX-512
// through the target pragma below; only called when the CPU has it.
#include "kernels/simd_bytes.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>

#include "kernels/vexp.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")

#include "kernels/vexp_steps.h"

namespace tquant::vexp {
namespace {

struct Ops {
  using F = __m512;
  using M = __mmask16;
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F add_exponent(F p, F t) {
    return _mm512_castsi512_ps(
        _mm512_add_epi32(_mm512_castps_si512(p), _mm512_slli_epi32(_mm512_castps_si512(t), 23)));
  }
  static M greater(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static M less(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M is_nan(F a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
  static F select(M m, F a, F b) { return _mm512_mask_mov_ps(b, m, a); }
};

// Lanes [0, n - i) of the step at i, for the last one.
__mmask16 tail_mask(int64_t left) { return static_cast<__mmask16>((1u << left) - 1); }

float max_value(const float* x, int64_t n) {
  __m512 m = _mm512_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
  if (i < n) m = _mm512_mask_max_ps(m, tail_mask(n - i), m, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
  return _mm512_reduce_max_ps(m);
}

float scale_max(float* x, int64_t n, float scale) {
  const __m512 s = _mm512_set1_ps(scale);
  __m512 m = _mm512_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), s);
    _mm512_storeu_ps(x + i, v);
    m = _mm512_max_ps(m, v);
  }
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), s);
    _mm512_mask_storeu_ps(x + i, k, v);
    m = _mm512_mask_max_ps(m, k, m, v);
  }
  return _mm512_reduce_max_ps(m);
}

// Adds the 16 floats of e to the partial sums of lanes 0..7 (lo) and 8..15 (hi).
void accumulate(__m512 e, __m512d& lo, __m512d& hi) {
  lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
  hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
}

double exp_sub_sum(const float* x, int64_t n, float shift, float* out) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = exp_steps<Ops>(_mm512_sub_ps(_mm512_loadu_ps(x + i), s));
    if (out) _mm512_storeu_ps(out + i, e);
    accumulate(e, lo, hi);
  }
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 e = _mm512_maskz_mov_ps(k, exp_steps<Ops>(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), s)));
    if (out) _mm512_mask_storeu_ps(out + i, k, e);
    accumulate(e, lo, hi);
  }
  alignas(64) double acc[kLanes];
  _mm512_store_pd(acc, lo);
  _mm512_store_pd(acc + 8, hi);
  return reduce_lanes(acc);
}

}  // namespace

const Kernels kAvx512 = {max_value, scale_max, exp_sub_sum};

}  // namespace tquant::vexp

#pragma GCC pop_options
