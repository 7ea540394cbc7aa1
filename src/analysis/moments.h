#pragma once
// Streaming mean, variance and kurtosis of a stream of values, without keeping the values.
// Raw sums of powers (Σx, Σx², Σx⁴) cancel catastrophically when the mean is large next to the
// spread, so each chunk is reduced to central moments in double and chunks are combined with
// the exact pairwise update of Chan et al. / Pébay (2008). Combining in a fixed order makes the
// result independent of the thread count.
#include <cstdint>
#include <limits>

namespace tquant::analysis {

class Moments {
 public:
  // Adds n values (two passes over them: their mean, then their central moments).
  void add(const float* x, int64_t n);
  // Adds values x[0], x[stride], ..., n of them.
  void add_strided(const float* x, int64_t n, int64_t stride);
  // Folds another stream's moments into this one, as if its values had been added here.
  void merge(const Moments& other);

  int64_t count() const { return n_; }
  double min() const { return min_; }
  double max() const { return max_; }
  double mean() const { return mean_; }
  // Population variance and standard deviation (divided by n, not n - 1).
  double variance() const { return n_ > 0 ? m2_ / n_ : 0.0; }
  double stddev() const;
  // Pearson's kurtosis E[(x - mean)^4] / variance^2 (a normal distribution gives 3, not 0);
  // NaN when every value is the same.
  double kurtosis() const;

 private:
  int64_t n_ = 0;
  double mean_ = 0, m2_ = 0, m3_ = 0, m4_ = 0;  // mean and Σ(x - mean)^k for k = 2, 3, 4
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
};

}  // namespace tquant::analysis
