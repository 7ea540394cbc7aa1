#include "quant/range_estimator.h"

#include "core/error.h"
#include "quant/group_index.h"
#include "quant/range_estimator_impl.h"

namespace tquant {

namespace {
struct NamedEstimator {
  RangeEstimator e;
  const char* name;
};
constexpr NamedEstimator kNames[] = {
    {RangeEstimator::CurrentMinMax, "current_minmax"}, {RangeEstimator::MinMax, "minmax"},
    {RangeEstimator::RunningMinMax, "running_minmax"}, {RangeEstimator::Mse, "mse"},
    {RangeEstimator::MseGolden, "mse_golden"},         {RangeEstimator::Percentile, "percentile"},
    {RangeEstimator::CrossEntropy, "cross_entropy"},
};
}  // namespace

const char* range_estimator_name(RangeEstimator e) {
  for (const auto& n : kNames)
    if (n.e == e) return n.name;
  fail("range estimator: unknown enum value {}", static_cast<int>(e));
}

RangeEstimator parse_range_estimator(std::string_view name) {
  std::string valid;
  for (const auto& n : kNames) {
    if (name == n.name) return n.e;
    valid += valid.empty() ? "" : ", ";
    valid += n.name;
  }
  fail("range estimator '{}' is unknown; valid: {}", name, valid);
}

RangeObserver::RangeObserver(RangeEstimator e, ObserverOptions o) : estimator_(e), options_(std::move(o)) {
  const std::string& where = options_.point;
  if (options_.grouping.granularity == Granularity::PerToken)
    fail("{}: per_token ranges are computed at run time; a {} observer has nothing to calibrate", where,
         range_estimator_name(e));
  if (!(options_.momentum >= 0.0 && options_.momentum < 1.0))
    fail("{}: momentum {} must be in [0, 1)", where, options_.momentum);
  if (!(options_.percentile >= 50.0 && options_.percentile <= 100.0))
    fail("{}: percentile {} must be in [50, 100]", where, options_.percentile);
  if (options_.grid_points < 1) fail("{}: grid_points {} must be at least 1", where, options_.grid_points);
  if (options_.sample_budget < 1 || options_.min_group_sample < 1)
    fail("{}: sample_budget {} and min_group_sample {} must be positive", where, options_.sample_budget,
         options_.min_group_sample);
}

void RangeObserver::observe(const float* x, int64_t rows, int64_t cols) {
  const std::string& where = options_.point;
  if (rows * cols == 0) fail("{}: empty batch [{}, {}]", where, rows, cols);
  if (batches_ > 0) {
    if (groups_within_rows(options_.grouping) && rows != rows_)
      fail("{}: {} groups are bound to rows, but this batch has {} rows and the first had {}", where,
           granularity_name(options_.grouping.granularity), rows, rows_);
    if (options_.grouping.granularity != Granularity::PerTensor && cols != cols_)
      fail("{}: this batch has {} columns but the first had {}", where, cols, cols_);
  }
  const GroupIndex index(options_.grouping, rows, cols, where);
  const std::vector<Range> minmax = group_min_max(x, index, where);
  add_batch(x, index, minmax);
  if (batches_ == 0) {
    rows_ = rows;
    cols_ = cols;
  }
  ++batches_;
}

std::vector<Range> RangeObserver::ranges(int bits, bool symmetric) const {
  check_bits(bits, options_.point);
  if (batches_ == 0) fail("{}: no calibration data was observed", options_.point);
  return compute_ranges(bits, symmetric);
}

QuantParams RangeObserver::finalize(int bits, bool symmetric) const {
  return params_from_ranges(bits, symmetric, options_.grouping, ranges(bits, symmetric), options_.point);
}

int64_t RangeObserver::group_capacity(int64_t groups) const {
  return std::max(options_.sample_budget / std::max<int64_t>(groups, 1), options_.min_group_sample);
}

std::unique_ptr<RangeObserver> make_range_observer(RangeEstimator e, ObserverOptions o) {
  switch (e) {
    case RangeEstimator::CurrentMinMax:
    case RangeEstimator::MinMax:
    case RangeEstimator::RunningMinMax:
      return make_minmax_observer(e, std::move(o));
    case RangeEstimator::Mse:
    case RangeEstimator::MseGolden:
      return make_mse_observer(e, std::move(o));
    case RangeEstimator::Percentile:
      return make_percentile_observer(std::move(o));
    case RangeEstimator::CrossEntropy:
      return make_cross_entropy_observer(std::move(o));
  }
  fail("{}: unknown range estimator {}", o.point, static_cast<int>(e));
}

std::unique_ptr<RangeObserver> make_range_observer(std::string_view estimator, ObserverOptions o) {
  RangeEstimator e;
  try {
    e = parse_range_estimator(estimator);
  } catch (const Error& err) {
    fail("{}: {}", o.point, err.what());
  }
  return make_range_observer(e, std::move(o));
}

std::vector<float> channel_widths(const std::vector<Range>& ranges) {
  std::vector<float> w(ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) w[i] = ranges[i].hi - ranges[i].lo;
  return w;
}

}  // namespace tquant
