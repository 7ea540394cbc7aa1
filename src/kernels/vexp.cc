// Dispatch of vexp.h's kernels by SIMD level, and what is built on them.
#include "kernels/vexp.h"

#include <cmath>

#include "kernels/cpu_features.h"

namespace tquant {
namespace {

const vexp::Kernels& kernels() {
  switch (simd_level()) {
    case SimdLevel::AVX512: return vexp::kAvx512;
    case SimdLevel::AVX2: return vexp::kAvx2;
    case SimdLevel::Scalar: break;
  }
  return vexp::kScalar;
}

}  // namespace

// x − 0 is x for every float (−0 included), so this is the exp of x itself.
void exp_rows(const float* x, float* y, int64_t n) { kernels().exp_sub_sum(x, n, 0.f, y); }

float max_value(const float* x, int64_t n) { return kernels().max_value(x, n); }

float scale_max(float* x, int64_t n, float scale) { return kernels().scale_max(x, n, scale); }

double exp_sub_sum(float* x, int64_t n, float shift) { return kernels().exp_sub_sum(x, n, shift, x); }

double sum_exp_sub(const float* x, int64_t n, float shift) {
  return kernels().exp_sub_sum(x, n, shift, nullptr);
}

double log_sum_exp(const float* x, int64_t n) {
  const float m = max_value(x, n);
  if (!std::isfinite(m)) return m;
  return m + std::log(sum_exp_sub(x, n, m));
}

}  // namespace tquant
