#pragma once
// Percentiles as numpy.percentile computes them by default ("linear"): for n sorted values a and
// percentile p, h = (n - 1) p / 100 and the result is a[floor h] + (h - floor h)(a[floor h + 1] -
// a[floor h]). Extreme percentiles (99.99, 99.999) of a long stream are answered exactly from its
// tails, which stay small: P99.999 of 10^9 values needs only the 10^4 largest.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace tquant {

// The percentile p in [0, 100] of ascending-sorted, non-empty data.
double percentile_of_sorted(std::span<const float> sorted, double p);

// The exact `keep` largest and `keep` smallest values of a stream.
class StreamTails {
 public:
  explicit StreamTails(int64_t keep);
  void add(const float* v, int64_t n);
  int64_t seen() const { return seen_; }
  // The percentile p of everything added, or nullopt when the ranks it needs fall outside the
  // kept tails (the caller then estimates it from a sample).
  std::optional<double> percentile(double p) const;

 private:
  // Trims `v` to its `keep_` most extreme values (largest when `top`) and returns the threshold
  // beyond which a new value must lie to matter.
  float trim(std::vector<float>& v, bool top);

  int64_t keep_, seen_ = 0;
  std::vector<float> top_, bottom_;  // unordered; trimmed back to keep_ when they reach 2 keep_
  bool top_trimmed_ = false, bottom_trimmed_ = false;
  float top_thr_ = 0.f, bottom_thr_ = 0.f;  // valid once trimmed
};

}  // namespace tquant
