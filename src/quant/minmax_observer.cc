// current_minmax, minmax and running_minmax: they keep one range per group and nothing else.
#include "core/error.h"
#include "quant/range_estimator_impl.h"

namespace tquant {

namespace {

class MinMaxObserver final : public RangeObserver {
 public:
  MinMaxObserver(RangeEstimator e, ObserverOptions o) : RangeObserver(e, std::move(o)) {}

 protected:
  void add_batch(const float*, const GroupIndex&, const std::vector<Range>& batch) override {
    if (lo_.empty()) {
      lo_.resize(batch.size());
      hi_.resize(batch.size());
      for (size_t k = 0; k < batch.size(); ++k) {
        lo_[k] = batch[k].lo;
        hi_[k] = batch[k].hi;
      }
      return;
    }
    const double m = options().momentum;
    for (size_t k = 0; k < batch.size(); ++k) {
      switch (estimator()) {
        case RangeEstimator::CurrentMinMax:
          lo_[k] = batch[k].lo;
          hi_[k] = batch[k].hi;
          break;
        case RangeEstimator::MinMax:
          lo_[k] = std::min<double>(lo_[k], batch[k].lo);
          hi_[k] = std::max<double>(hi_[k], batch[k].hi);
          break;
        default:  // RunningMinMax
          lo_[k] = m * lo_[k] + (1.0 - m) * batch[k].lo;
          hi_[k] = m * hi_[k] + (1.0 - m) * batch[k].hi;
          break;
      }
    }
  }

  std::vector<Range> compute_ranges(int, bool) const override {
    std::vector<Range> out(lo_.size());
    for (size_t k = 0; k < lo_.size(); ++k)
      out[k] = {static_cast<float>(lo_[k]), static_cast<float>(hi_[k])};
    return out;
  }

 private:
  // double so a long EMA does not accumulate float rounding; min/max are exact either way.
  std::vector<double> lo_, hi_;
};

}  // namespace

std::unique_ptr<RangeObserver> make_minmax_observer(RangeEstimator e, ObserverOptions o) {
  return std::make_unique<MinMaxObserver>(e, std::move(o));
}

}  // namespace tquant
