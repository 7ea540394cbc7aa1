// percentile: clip each group at P(100 - p) and P(p) of all its data.
#include "core/error.h"
#include "quant/group_samples.h"
#include "quant/range_estimator_impl.h"

#include <algorithm>

namespace tquant {

namespace {

class PercentileObserver final : public RangeObserver {
 public:
  explicit PercentileObserver(ObserverOptions o) : RangeObserver(RangeEstimator::Percentile, std::move(o)) {}

 protected:
  void add_batch(const float* x, const GroupIndex& index, const std::vector<Range>& minmax) override {
    if (!samples_) {
      // Half the group's budget for the sample, a quarter for each exact tail.
      const int64_t cap = group_capacity(index.groups());
      samples_ = std::make_unique<GroupSamples>(std::max<int64_t>(cap / 2, 1), std::max<int64_t>(cap / 4, 1));
    }
    samples_->add(x, index, minmax);
  }

  std::vector<Range> compute_ranges(int, bool) const override {
    const double p = options().percentile;
    std::vector<Range> out(samples_->groups());
    for (int64_t k = 0; k < samples_->groups(); ++k) {
      const double lo = at(k, 100.0 - p), hi = at(k, p);
      out[k] = {static_cast<float>(lo), static_cast<float>(hi)};
    }
    return out;
  }

 private:
  // Exact from the tails when they reach the ranks, otherwise interpolated in the sample.
  double at(int64_t k, double p) const {
    if (const auto exact = samples_->tails(k).percentile(p)) return *exact;
    std::vector<float> v = samples_->sample(k).data();
    std::sort(v.begin(), v.end());
    return percentile_of_sorted(v, p);
  }

  std::unique_ptr<GroupSamples> samples_;
};

}  // namespace

std::unique_ptr<RangeObserver> make_percentile_observer(ObserverOptions o) {
  return std::make_unique<PercentileObserver>(std::move(o));
}

}  // namespace tquant
