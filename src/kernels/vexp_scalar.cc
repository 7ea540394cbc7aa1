// The reference the SIMD kernels are tested against, bit for bit: vexp_steps.h on one float at a
// time, std::fma being the one rounding of the fused multiply-add.
#include <algorithm>
#include <bit>
#include <cmath>

#include "kernels/vexp.h"
#include "kernels/vexp_steps.h"

namespace tquant::vexp {
namespace {

struct Ops {
  using F = float;
  using M = bool;
  static F set1(float v) { return v; }
  static F fma(F a, F b, F c) { return std::fma(a, b, c); }
  static F sub(F a, F b) { return a - b; }
  static F add_exponent(F p, F t) {
    return std::bit_cast<float>(std::bit_cast<uint32_t>(p) + (std::bit_cast<uint32_t>(t) << 23));
  }
  static M greater(F a, F b) { return a > b; }
  static M less(F a, F b) { return a < b; }
  static M is_nan(F a) { return a != a; }
  static F select(M m, F a, F b) { return m ? a : b; }
};

float max_value(const float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

float scale_max(float* x, int64_t n, float scale) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    x[i] *= scale;
    m = std::max(m, x[i]);
  }
  return m;
}

double exp_sub_sum(const float* x, int64_t n, float shift, float* out) {
  double acc[kLanes] = {};
  for (int64_t i = 0; i < n; ++i) {
    const float e = exp_steps<Ops>(x[i] - shift);
    if (out) out[i] = e;
    acc[i % kLanes] += e;
  }
  return reduce_lanes(acc);
}

}  // namespace

const Kernels kScalar = {max_value, scale_max, exp_sub_sum};

}  // namespace tquant::vexp

namespace tquant {

float exp_ref(float x) { return vexp::exp_steps<vexp::Ops>(x); }

}  // namespace tquant
