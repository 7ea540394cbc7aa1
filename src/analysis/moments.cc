#include "analysis/moments.h"

#include <algorithm>
#include <cmath>

namespace tquant::analysis {

void Moments::add(const float* x, int64_t n) { add_strided(x, n, 1); }

void Moments::add_strided(const float* x, int64_t n, int64_t stride) {
  if (n <= 0) return;
  Moments chunk;
  double sum = 0, lo = x[0], hi = x[0];
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i * stride];
    sum += v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  chunk.n_ = n;
  chunk.mean_ = sum / n;
  chunk.min_ = lo;
  chunk.max_ = hi;
  for (int64_t i = 0; i < n; ++i) {
    const double d = x[i * stride] - chunk.mean_, d2 = d * d;
    chunk.m2_ += d2;
    chunk.m3_ += d2 * d;
    chunk.m4_ += d2 * d2;
  }
  merge(chunk);
}

void Moments::merge(const Moments& b) {
  if (b.n_ == 0) return;
  if (n_ == 0) {
    *this = b;
    return;
  }
  const double na = n_, nb = b.n_, n = na + nb;
  const double d = b.mean_ - mean_, d2 = d * d;
  const double m4 = m4_ + b.m4_ + d2 * d2 * na * nb * (na * na - na * nb + nb * nb) / (n * n * n) +
                    6 * d2 * (na * na * b.m2_ + nb * nb * m2_) / (n * n) + 4 * d * (na * b.m3_ - nb * m3_) / n;
  const double m3 = m3_ + b.m3_ + d2 * d * na * nb * (na - nb) / (n * n) + 3 * d * (na * b.m2_ - nb * m2_) / n;
  const double m2 = m2_ + b.m2_ + d2 * na * nb / n;
  mean_ += d * nb / n;
  m2_ = m2;
  m3_ = m3;
  m4_ = m4;
  n_ += b.n_;
  min_ = std::min(min_, b.min_);
  max_ = std::max(max_, b.max_);
}

double Moments::stddev() const { return std::sqrt(variance()); }

double Moments::kurtosis() const {
  if (n_ == 0 || m2_ <= 0) return std::numeric_limits<double>::quiet_NaN();
  return n_ * m4_ / (m2_ * m2_);
}

}  // namespace tquant::analysis
