// AVX2 kernels for vexp.h: 16 floats per step as two vectors of 8, whose exps go to the
// definition's 16 partial sums as four vectors of 4 doubles; the last, partial step goes through
// masked loads and stores, its absent lanes adding +0.0 to their sums, which leaves them
// unchanged. Compiled for AVX2 + FMA through the target pragma below.
#include "kernels/simd_bytes.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>

#include "kernels/vexp.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

#include "kernels/vexp_steps.h"

namespace tquant::vexp {
namespace {

struct Ops {
  using F = __m256;
  using M = __m256;  // all ones where true
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F add_exponent(F p, F t) {
    return _mm256_castsi256_ps(
        _mm256_add_epi32(_mm256_castps_si256(p), _mm256_slli_epi32(_mm256_castps_si256(t), 23)));
  }
  static M greater(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static M less(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M is_nan(F a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  static F select(M m, F a, F b) { return _mm256_blendv_ps(b, a, m); }
};

// All ones in lanes [0, left) (left may exceed 8 or be negative).
__m256i lane_mask(int64_t left) {
  const int64_t k = std::clamp<int64_t>(left, 0, 8);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

float horizontal_max(__m256 m) {
  alignas(32) float v[8];
  _mm256_store_ps(v, m);
  return *std::max_element(v, v + 8);
}

float max_value(const float* x, int64_t n) {
  __m256 m = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
  if (i < n) {
    const __m256i k = lane_mask(n - i);
    m = _mm256_blendv_ps(m, _mm256_max_ps(m, _mm256_maskload_ps(x + i, k)), _mm256_castsi256_ps(k));
  }
  return horizontal_max(m);
}

float scale_max(float* x, int64_t n, float scale) {
  const __m256 s = _mm256_set1_ps(scale);
  __m256 m = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), s);
    _mm256_storeu_ps(x + i, v);
    m = _mm256_max_ps(m, v);
  }
  if (i < n) {
    const __m256i k = lane_mask(n - i);
    const __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + i, k), s);
    _mm256_maskstore_ps(x + i, k, v);
    m = _mm256_blendv_ps(m, _mm256_max_ps(m, v), _mm256_castsi256_ps(k));
  }
  return horizontal_max(m);
}

// Adds the 8 floats of e to the partial sums of lanes 0..3 (lo) and 4..7 (hi) of its half.
void accumulate(__m256 e, __m256d& lo, __m256d& hi) {
  lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
  hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
}

double exp_sub_sum(const float* x, int64_t n, float shift, float* out) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256d acc4[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int h = 0; h < 2; ++h) {
      const __m256 e = exp_steps<Ops>(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8 * h), s));
      if (out) _mm256_storeu_ps(out + i + 8 * h, e);
      accumulate(e, acc4[2 * h], acc4[2 * h + 1]);
    }
  for (int h = 0; h < 2 && i + 8 * h < n; ++h) {  // the last step: lanes past n add +0.0
    const __m256i k = lane_mask(n - i - 8 * h);
    const __m256 e = _mm256_and_ps(exp_steps<Ops>(_mm256_sub_ps(_mm256_maskload_ps(x + i + 8 * h, k), s)),
                                   _mm256_castsi256_ps(k));
    if (out) _mm256_maskstore_ps(out + i + 8 * h, k, e);
    accumulate(e, acc4[2 * h], acc4[2 * h + 1]);
  }
  alignas(32) double acc[kLanes];
  for (int q = 0; q < 4; ++q) _mm256_store_pd(acc + 4 * q, acc4[q]);
  return reduce_lanes(acc);
}

}  // namespace

const Kernels kAvx2 = {max_value, scale_max, exp_sub_sum};

}  // namespace tquant::vexp

#pragma GCC pop_options
