#pragma once
// The concrete observers behind make_range_observer, one file each (internal to src/quant).
#include <memory>

#include "quant/range_estimator.h"

namespace tquant {

std::unique_ptr<RangeObserver> make_minmax_observer(RangeEstimator e, ObserverOptions o);  // 3 kinds
std::unique_ptr<RangeObserver> make_mse_observer(RangeEstimator e, ObserverOptions o);     // grid, golden
std::unique_ptr<RangeObserver> make_percentile_observer(ObserverOptions o);
std::unique_ptr<RangeObserver> make_cross_entropy_observer(ObserverOptions o);

}  // namespace tquant
