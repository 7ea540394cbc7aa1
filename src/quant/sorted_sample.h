#pragma once
// The squared error of fake-quantizing a fixed set of values, evaluated for many candidate
// (scale, zero point) pairs — the inner loop of the MSE range search.
//
// Sorting once makes each evaluation O(distinct codes · log(run length)) instead of O(n): the
// code is monotone in x, so equal codes form runs of the sorted data, found by galloping search
// with the very code function the quantizer uses (so run boundaries agree with it exactly); a
// run's error sum (x - c)^2 comes from prefix sums of x and x^2. Prefix sums are long double
// (64-bit mantissa) because the error of a run is a small difference of large sums. When the
// data is small next to the number of codes, a direct vectorised pass is cheaper and is used.
#include <cstdint>
#include <span>
#include <vector>

#include "quant/affine.h"

namespace tquant {

class SortedSample {
 public:
  explicit SortedSample(std::vector<float> values);  // finite values; any order
  int64_t size() const { return static_cast<int64_t>(v_.size()); }
  float min() const { return v_.front(); }
  float max() const { return v_.back(); }
  const std::vector<float>& values() const { return v_; }

  // Sum over the sample of (x - x̂)^2, x̂ the fake-quantized x.
  double sq_error(ScaleZero sz, int bits, bool symmetric) const;
  // The two strategies, exposed so the tests can compare each with the reference.
  double sq_error_direct(ScaleZero sz, int bits, bool symmetric) const;
  double sq_error_runs(ScaleZero sz, int bits, bool symmetric) const;

 private:
  std::vector<float> v_;
  std::vector<long double> s1_, s2_;  // s1_[i] = sum of v_[0..i), s2_ likewise of squares
};

// Reference: a plain loop over the values with fake_quantize_ref, accumulated in double.
double sq_error_ref(std::span<const float> values, ScaleZero sz, int bits, bool symmetric);

}  // namespace tquant
