// cross_entropy: fit each group's range to sampled complete rows (the softmax needs every column)
// by minimising the softmax cross-entropy between FP and fake-quantized rows.
//
// Rows are sampled per "stream": groups bound to a row index (per-channel on rows, per-group) see
// row r of every batch, so each row index has its own reservoir; column groups (per-tensor,
// per-channel on columns, PEG) share one reservoir of all rows. A group is scored with only its
// own elements quantized and the rest of the row left in FP.
#include <omp.h>

#include <numeric>

#include "core/error.h"
#include "quant/cross_entropy_loss.h"
#include "quant/range_estimator_impl.h"
#include "quant/range_search.h"
#include "quant/reservoir.h"

namespace tquant {

namespace {

constexpr uint64_t kRowSeed = 0x63726f7373ull;  // "cross"

class CrossEntropyObserver final : public RangeObserver {
 public:
  explicit CrossEntropyObserver(ObserverOptions o) : RangeObserver(RangeEstimator::CrossEntropy, std::move(o)) {}

 protected:
  void add_batch(const float* x, const GroupIndex& index, const std::vector<Range>& minmax) override {
    const int64_t rows = index.rows(), cols = index.cols();
    if (streams_.empty()) {
      cols_ = cols;
      const int64_t n_streams = index.within_rows() ? rows : 1;
      const int64_t values = group_capacity(n_streams);
      const int64_t row_cap = std::max<int64_t>(1, values / cols);
      streams_.reserve(n_streams);
      for (int64_t s = 0; s < n_streams; ++s) streams_.emplace_back(row_cap, cols, kRowSeed + s);
      range_ = minmax;
      first_ = std::make_unique<GroupIndex>(index);
    } else {
      // Per-tensor observers accept any cols, but a row sample needs one row width.
      if (cols != cols_)
        fail("{}: cross_entropy needs complete rows of one width; this batch has {} columns, the first had {}",
             options().point, cols, cols_);
      for (size_t k = 0; k < range_.size(); ++k)
        range_[k] = {std::min(range_[k].lo, minmax[k].lo), std::max(range_[k].hi, minmax[k].hi)};
    }
    if (index.within_rows()) {
#pragma omp parallel for schedule(static) if (rows > 1)
      for (int64_t r = 0; r < rows; ++r) streams_[r].add(x + r * cols, 1);
    } else {
      streams_[0].add(x, rows);
    }
  }

  std::vector<Range> compute_ranges(int bits, bool symmetric) const override {
    const GroupIndex& index = *first_;
    std::vector<Range> out(index.groups());
    const bool by_group = index.groups() >= omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) if (by_group)
    for (int64_t k = 0; k < index.groups(); ++k) out[k] = fit(index, k, bits, symmetric);
    return out;
  }

 private:
  Range fit(const GroupIndex& index, int64_t k, int bits, bool symmetric) const {
    std::vector<int32_t> columns;
    const Reservoir* stream;
    if (index.within_rows()) {
      stream = &streams_[index.row_of(k)];
      columns.resize(index.col_end(k) - index.col_begin(k));
      std::iota(columns.begin(), columns.end(), static_cast<int32_t>(index.col_begin(k)));
    } else {
      stream = &streams_[0];
      columns = index.columns_of(k);
    }
    const CrossEntropyGroup group(stream->data().data(), stream->size(), cols_, columns);
    const SearchDomain d{range_[k].lo, range_[k].hi, bits, symmetric};
    const std::string& where = options().point;
    const RangeLoss loss = [&](const Range& r) {
      return group.loss(scale_zero_from_range(r, bits, symmetric, where), bits, symmetric);
    };
    return separable_grid_search(d, options().grid_points, loss).range;
  }

  int64_t cols_ = 0;
  std::vector<Reservoir> streams_;
  std::vector<Range> range_;           // exact per-group min/max over all batches
  std::unique_ptr<GroupIndex> first_;  // group layout (identical for every batch, see observe())
};

}  // namespace

std::unique_ptr<RangeObserver> make_cross_entropy_observer(ObserverOptions o) {
  return std::make_unique<CrossEntropyObserver>(std::move(o));
}

}  // namespace tquant
