#include "quant/percentile.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "core/error.h"

namespace tquant {

double percentile_of_sorted(std::span<const float> a, double p) {
  if (a.empty()) fail("percentile of no data");
  if (!(p >= 0.0 && p <= 100.0)) fail("percentile {} is outside [0, 100]", p);
  const double h = static_cast<double>(a.size() - 1) * p / 100.0;
  const size_t i = static_cast<size_t>(std::floor(h));
  if (i + 1 >= a.size()) return a.back();
  return a[i] + (h - static_cast<double>(i)) * (static_cast<double>(a[i + 1]) - a[i]);
}

StreamTails::StreamTails(int64_t keep) : keep_(keep) {
  if (keep < 1) fail("percentile tails: keep {} must be at least 1", keep);
}

float StreamTails::trim(std::vector<float>& v, bool top) {
  if (top)
    std::nth_element(v.begin(), v.begin() + (keep_ - 1), v.end(), std::greater<float>());
  else
    std::nth_element(v.begin(), v.begin() + (keep_ - 1), v.end());
  v.resize(keep_);
  // A later value equal to the threshold cannot change the tail as a multiset of values, so
  // add() keeps only values strictly beyond it.
  return v[keep_ - 1];
}

void StreamTails::add(const float* v, int64_t n) {
  seen_ += n;
  for (int64_t i = 0; i < n; ++i) {
    if (!top_trimmed_ || v[i] > top_thr_) top_.push_back(v[i]);
    if (!bottom_trimmed_ || v[i] < bottom_thr_) bottom_.push_back(v[i]);
    if (static_cast<int64_t>(top_.size()) >= 2 * keep_) {
      top_thr_ = trim(top_, true);
      top_trimmed_ = true;
    }
    if (static_cast<int64_t>(bottom_.size()) >= 2 * keep_) {
      bottom_thr_ = trim(bottom_, false);
      bottom_trimmed_ = true;
    }
  }
}

std::optional<double> StreamTails::percentile(double p) const {
  if (seen_ == 0) fail("percentile of no data");
  if (!(p >= 0.0 && p <= 100.0)) fail("percentile {} is outside [0, 100]", p);
  const int64_t n = seen_;
  const double h = static_cast<double>(n - 1) * p / 100.0;
  const int64_t i = static_cast<int64_t>(std::floor(h));
  const int64_t j = std::min(i + 1, n - 1);
  // Ranks i and j must both come from one tail. Untrimmed, a tail still holds the whole stream;
  // trimmed, the `keep_` most extreme of its values are exactly those of the stream (everything
  // dropped was beyond none of them), so the bottom covers ranks [0, keep_) and the top covers
  // [n - keep_, n).
  std::vector<float> bottom = bottom_, top = top_;
  std::sort(bottom.begin(), bottom.end());
  std::sort(top.begin(), top.end());
  const int64_t bottom_ranks = bottom_trimmed_ ? keep_ : n;
  const int64_t top_ranks = top_trimmed_ ? keep_ : n;
  double a, b;
  if (j < bottom_ranks) {
    a = bottom[i];
    b = bottom[j];
  } else if (i >= n - top_ranks) {
    // ascending `top` ends with rank n - 1; rank r sits at top.size() - (n - r)
    const int64_t end = static_cast<int64_t>(top.size());
    a = top[end - (n - i)];
    b = top[end - (n - j)];
  } else {
    return std::nullopt;
  }
  return a + (h - static_cast<double>(i)) * (b - a);
}

}  // namespace tquant
