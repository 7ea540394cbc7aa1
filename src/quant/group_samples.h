#pragma once
// Per-group state of the sampling estimators (mse, mse_golden, percentile): a bounded reservoir
// of each group's values, the exact min/max of everything seen, and optionally the exact tails.
#include <cstdint>
#include <memory>
#include <vector>

#include "quant/affine.h"
#include "quant/group_index.h"
#include "quant/percentile.h"
#include "quant/reservoir.h"

namespace tquant {

class GroupSamples {
 public:
  // `tail_keep` > 0 also keeps the exact `tail_keep` largest and smallest values of each group.
  GroupSamples(int64_t capacity_per_group, int64_t tail_keep);

  // One batch; `minmax` is its per-group range (already checked finite).
  void add(const float* x, const GroupIndex& index, const std::vector<Range>& minmax);

  int64_t groups() const { return static_cast<int64_t>(samples_.size()); }
  const Reservoir& sample(int64_t k) const { return samples_[k]; }
  const Range& range(int64_t k) const { return range_[k]; }      // exact, all batches
  const StreamTails& tails(int64_t k) const { return tails_[k]; }  // only when tail_keep > 0

 private:
  int64_t capacity_, tail_keep_;
  std::vector<Reservoir> samples_;
  std::vector<StreamTails> tails_;
  std::vector<Range> range_;
};

}  // namespace tquant
