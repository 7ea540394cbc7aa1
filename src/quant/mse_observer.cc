// mse (grid) and mse_golden: fit each group's range to its value sample by minimising the squared
// fake-quantization error (range_search.h for the candidates, sorted_sample.h for the loss).
#include <omp.h>

#include "core/error.h"
#include "quant/group_samples.h"
#include "quant/range_estimator_impl.h"
#include "quant/range_search.h"
#include "quant/sorted_sample.h"

namespace tquant {

namespace {

class MseObserver final : public RangeObserver {
 public:
  MseObserver(RangeEstimator e, ObserverOptions o) : RangeObserver(e, std::move(o)) {}

 protected:
  void add_batch(const float* x, const GroupIndex& index, const std::vector<Range>& minmax) override {
    if (!samples_) samples_ = std::make_unique<GroupSamples>(group_capacity(index.groups()), 0);
    samples_->add(x, index, minmax);
  }

  std::vector<Range> compute_ranges(int bits, bool symmetric) const override {
    const int64_t groups = samples_->groups();
    std::vector<Range> out(groups);
    // Many groups (per-channel weights): one group per thread. Few groups: the search itself
    // spreads its candidates over the threads (argmin_range). Either way every loss is computed
    // by a single thread and minima are taken in a fixed order.
    const bool by_group = groups >= omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) if (by_group)
    for (int64_t k = 0; k < groups; ++k) out[k] = fit(k, bits, symmetric);
    return out;
  }

 private:
  Range fit(int64_t k, int bits, bool symmetric) const {
    const SortedSample sample(samples_->sample(k).data());
    const SearchDomain d{samples_->range(k).lo, samples_->range(k).hi, bits, symmetric};
    const std::string& where = options().point;
    const RangeLoss loss = [&](const Range& r) {
      return sample.sq_error(scale_zero_from_range(r, bits, symmetric, where), bits, symmetric);
    };
    return estimator() == RangeEstimator::Mse ? grid_search(d, options().grid_points, loss).range
                                              : golden_search(d, loss).range;
  }

  std::unique_ptr<GroupSamples> samples_;
};

}  // namespace

std::unique_ptr<RangeObserver> make_mse_observer(RangeEstimator e, ObserverOptions o) {
  return std::make_unique<MseObserver>(e, std::move(o));
}

}  // namespace tquant
