#pragma once
// Range estimators (METHODS.md §1 table) as stateful observers: a calibration hook feeds them one
// batch at a time, then finalize() turns what they saw into QuantParams for given bits/symmetry.
//
//   current_minmax   min/max of the last batch
//   minmax           min/max over all batches
//   running_minmax   EMA of per-batch min/max: r = m·r + (1 - m)·batch, m = momentum (0.9);
//                    the first batch initialises r
//   mse              grid of candidate ranges minimising Σ(x - x̂)^2 (range_search.h). Cost:
//                    100 loss evaluations per group, but 100·(2S - 1) = 12700 at 8 bits for
//                    asymmetric two-sided data (the reference's shift grid) — slow for many
//                    small groups (LLM per-group weights); mse_golden needs ~500.
//   mse_golden       golden-section search of the same loss
//   percentile       clip at P(100 - p) and P(p) of all data (numpy's linear interpolation)
//   cross_entropy    grid minimising the softmax cross-entropy of FP vs quantized rows (logits)
//
// Every estimator works for every static granularity (per-tensor, per-channel on rows or columns,
// per-group, PEG); per-token is dynamic and has none. For PEG with range-based permutation,
// calibrate a `minmax` per_channel(1) observer first, build the map with
// range_permuted_channel_groups(channel_widths(...)), then calibrate with that map — the paper's
// two-pass procedure.
//
// Data-hungry estimators (mse, mse_golden, percentile, cross_entropy) keep a bounded,
// deterministic sample per group (reservoir.h): up to max(sample_budget / groups,
// min_group_sample) values per group (cross_entropy: whole rows of that many values). With less
// data than that they see everything and are exact; beyond it MSE/CE are scored on a uniform
// sample, while their search extent always comes from the exact min/max of all data. percentile
// splits its budget: half for the sample and a quarter for each exact tail (the largest and the
// smallest values), so with the defaults P99.99 of up to 2.6·10^9 values per group is exact;
// percentiles the tails do not reach are read from the sample. Memory: at most
// max(sample_budget, groups · min_group_sample) floats per observer (4 MiB per tensor by
// default; a per-channel observer over 768 activation channels can hold 200 MiB).
//
// An observer is not thread-safe: feed each one from one thread at a time (the forward pass calls
// hooks sequentially). Its own work is parallel inside observe()/finalize() and, like everything
// in src/quant, gives the same result for any thread count.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "quant/affine.h"
#include "quant/group_index.h"
#include "quant/grouping.h"
#include "quant/quant_params.h"

namespace tquant {

enum class RangeEstimator { CurrentMinMax, MinMax, RunningMinMax, Mse, MseGolden, Percentile, CrossEntropy };

const char* range_estimator_name(RangeEstimator e);  // "current_minmax", "minmax", ...
RangeEstimator parse_range_estimator(std::string_view name);

struct ObserverOptions {
  std::string point = "observer";     // the quantization point, named in every error
  Grouping grouping;                  // any static granularity
  double momentum = 0.9;              // running_minmax
  double percentile = 99.99;          // percentile: p in [50, 100]
  int grid_points = 100;              // mse, cross_entropy
  int64_t sample_budget = 1 << 20;    // values kept per observer, split over groups...
  int64_t min_group_sample = 1 << 16;  // ...but never fewer than this per group
};

class RangeObserver {
 public:
  virtual ~RangeObserver() = default;

  // One batch as the 2-D view [rows, cols]. Groups bound to rows (per-channel on rows, per-group)
  // need the same rows in every batch; column groups (per-channel on columns, PEG) the same cols.
  // NaN or ±inf is an error naming the point.
  void observe(const float* x, int64_t rows, int64_t cols);
  void observe(const Tensor& x) { observe(x.data(), x.rows(), x.cols()); }

  int64_t batches() const { return batches_; }
  RangeEstimator estimator() const { return estimator_; }
  const ObserverOptions& options() const { return options_; }

  // The clipping range of each group (MSE and CE depend on bits/symmetry). Fails before any batch.
  std::vector<Range> ranges(int bits, bool symmetric) const;
  QuantParams finalize(int bits, bool symmetric) const;

 protected:
  RangeObserver(RangeEstimator e, ObserverOptions o);
  // Called after the checks, with the batch's per-group min/max (which every estimator needs).
  virtual void add_batch(const float* x, const GroupIndex& index, const std::vector<Range>& minmax) = 0;
  virtual std::vector<Range> compute_ranges(int bits, bool symmetric) const = 0;
  // The per-group sample capacity in values (see the header comment).
  int64_t group_capacity(int64_t groups) const;

 private:
  RangeEstimator estimator_;
  ObserverOptions options_;
  int64_t batches_ = 0, rows_ = -1, cols_ = -1;
};

std::unique_ptr<RangeObserver> make_range_observer(RangeEstimator e, ObserverOptions o);
std::unique_ptr<RangeObserver> make_range_observer(std::string_view estimator, ObserverOptions o);

// hi - lo of each range: the per-channel widths that range_permuted_channel_groups sorts by.
std::vector<float> channel_widths(const std::vector<Range>& ranges);

}  // namespace tquant
