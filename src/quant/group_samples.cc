#include "quant/group_samples.h"

#include <algorithm>

namespace tquant {

namespace {
// Any fixed value works; each group's reservoir hashes (seed + group) into its own stream.
constexpr uint64_t kSampleSeed = 0x7175616e74ull;  // "quant"
}  // namespace

GroupSamples::GroupSamples(int64_t capacity_per_group, int64_t tail_keep)
    : capacity_(capacity_per_group), tail_keep_(tail_keep) {}

void GroupSamples::add(const float* x, const GroupIndex& index, const std::vector<Range>& minmax) {
  const int64_t groups = index.groups();
  if (samples_.empty()) {
    samples_.reserve(groups);
    for (int64_t k = 0; k < groups; ++k) samples_.emplace_back(capacity_, 1, kSampleSeed + k);
    if (tail_keep_ > 0) tails_.assign(groups, StreamTails(tail_keep_));
    range_ = minmax;
  } else {
    for (int64_t k = 0; k < groups; ++k)
      range_[k] = {std::min(range_[k].lo, minmax[k].lo), std::max(range_[k].hi, minmax[k].hi)};
  }
  const bool contiguous =
      index.within_rows() || index.grouping().granularity == Granularity::PerTensor;
  // Each group's stream is fed sequentially by one thread, so samples do not depend on threads.
#pragma omp parallel if (groups > 1)
  {
    std::vector<float> buf;
#pragma omp for schedule(dynamic, 1)
    for (int64_t k = 0; k < groups; ++k) {
      const float* v;
      int64_t n;
      if (contiguous) {
        v = index.within_rows() ? x + index.row_of(k) * index.cols() + index.col_begin(k) : x;
        n = index.count(k);
      } else {
        buf.clear();
        index.gather(x, k, buf);
        v = buf.data();
        n = static_cast<int64_t>(buf.size());
      }
      samples_[k].add(v, n);
      if (tail_keep_ > 0) tails_[k].add(v, n);
    }
  }
}

}  // namespace tquant
