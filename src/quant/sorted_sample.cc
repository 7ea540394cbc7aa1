#include "quant/sorted_sample.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "quant/affine_fast.h"

namespace tquant {

SortedSample::SortedSample(std::vector<float> values) : v_(std::move(values)) {
  if (v_.empty()) fail("MSE search: no values to fit a range to");
  std::sort(v_.begin(), v_.end());
  s1_.resize(v_.size() + 1);
  s2_.resize(v_.size() + 1);
  s1_[0] = s2_[0] = 0;
  for (size_t i = 0; i < v_.size(); ++i) {
    const long double x = v_[i];
    s1_[i + 1] = s1_[i] + x;
    s2_[i + 1] = s2_[i] + x * x;
  }
}

double SortedSample::sq_error(ScaleZero sz, int bits, bool symmetric) const {
  // Cost model: runs cost about 2 log2(run length) code evaluations each, the direct pass one
  // (cheaper, vectorised) evaluation per value; weigh the runs 4x.
  const double n = static_cast<double>(v_.size());
  const double codes = std::min(n, static_cast<double>(code_max(bits, symmetric)) -
                                       code_min(bits, symmetric) + 1.0);
  const double run_cost = 4.0 * 2.0 * codes * std::log2(n / codes + 2.0);
  return run_cost < n ? sq_error_runs(sz, bits, symmetric) : sq_error_direct(sz, bits, symmetric);
}

double SortedSample::sq_error_direct(ScaleZero sz, int bits, bool symmetric) const {
  const float s = sz.scale, z = sz.zero_point;
  const float qmin = static_cast<float>(code_min(bits, symmetric));
  const float qmax = static_cast<float>(code_max(bits, symmetric));
  double acc = 0.0;
  for (float x : v_) {
    const float xq = s * (quantize_code_fast(x, s, z, qmin, qmax) - z);
    const double d = static_cast<double>(x) - xq;
    acc += d * d;
  }
  return acc;
}

double SortedSample::sq_error_runs(ScaleZero sz, int bits, bool symmetric) const {
  const float s = sz.scale, z = sz.zero_point;
  const float qmin = static_cast<float>(code_min(bits, symmetric));
  const float qmax = static_cast<float>(code_max(bits, symmetric));
  const int64_t n = size();
  long double acc = 0;
  int64_t i = 0;
  while (i < n) {
    const float q = quantize_code_fast(v_[i], s, z, qmin, qmax);
    // Gallop: find a bound hi with code(v_[hi]) > q (or n), then binary-search inside.
    int64_t step = 1, lo = i, hi = i + 1;
    while (hi < n && quantize_code_fast(v_[hi], s, z, qmin, qmax) <= q) {
      lo = hi;
      step *= 2;
      hi = std::min(n, hi + step);
    }
    const int64_t end =
        std::partition_point(v_.begin() + lo, v_.begin() + hi,
                             [&](float x) { return quantize_code_fast(x, s, z, qmin, qmax) <= q; }) -
        v_.begin();
    const long double c = s * (q - z);  // x̂ of the run, computed exactly as the quantizer does
    const long double cnt = static_cast<long double>(end - i);
    const long double sum = s1_[end] - s1_[i], sum_sq = s2_[end] - s2_[i];
    // sum (x - c)^2 = sum x^2 - 2 c sum x + cnt c^2; rounding can leave a tiny negative.
    acc += std::max<long double>(0, sum_sq - 2 * c * sum + cnt * c * c);
    i = end;
  }
  return static_cast<double>(acc);
}

double sq_error_ref(std::span<const float> values, ScaleZero sz, int bits, bool symmetric) {
  const float qmin = static_cast<float>(code_min(bits, symmetric));
  const float qmax = static_cast<float>(code_max(bits, symmetric));
  double acc = 0.0;
  for (float x : values) {
    const double d = static_cast<double>(x) - fake_quantize_ref(x, sz.scale, sz.zero_point, qmin, qmax);
    acc += d * d;
  }
  return acc;
}

}  // namespace tquant
