#pragma once
// How the elements of one [rows, cols] batch fall into the groups of a static Grouping — the view
// range observers take of their data. (fake_quant.cc walks the groups with its own fused loops.)
#include <cstdint>
#include <string_view>
#include <vector>

#include "quant/affine.h"
#include "quant/grouping.h"

namespace tquant {

class GroupIndex {
 public:
  // Fails (naming `where`) for PerToken, which has no static groups, and for shapes the grouping
  // does not fit (see group_count).
  GroupIndex(const Grouping& g, int64_t rows, int64_t cols, std::string_view where);

  const Grouping& grouping() const { return grouping_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t groups() const { return groups_; }
  // Row-bound groups (per-channel on rows, per-group) lie inside one row; the others are column
  // groups that take their columns from every row.
  bool within_rows() const { return within_rows_; }

  // Row-bound groups: the row of group k and its column span [col_begin, col_end).
  int64_t row_of(int64_t k) const;
  int64_t col_begin(int64_t k) const;
  int64_t col_end(int64_t k) const;
  // Column groups: the columns of group k, ascending (every column for per-tensor).
  const std::vector<int32_t>& columns_of(int64_t k) const { return columns_[k]; }

  // Elements of group k in one batch.
  int64_t count(int64_t k) const;
  // Appends the elements of group k to `out` in row-major order (a deterministic order, which the
  // reservoir samples rely on).
  void gather(const float* x, int64_t k, std::vector<float>& out) const;

 private:
  Grouping grouping_;
  int64_t rows_, cols_, groups_;
  bool within_rows_;
  int64_t per_row_ = 1;  // groups per row (row-bound groups)
  std::vector<std::vector<int32_t>> columns_;
};

// Per-group [min, max] of one batch; fails on NaN or ±inf, naming `where`, row and column (a range
// cannot be infinite). Zeros come back as +0 whichever signed zero the data had, so the result
// does not depend on the order of the reduction.
std::vector<Range> group_min_max(const float* x, const GroupIndex& index, std::string_view where);
// Scalar reference: gather each group and scan it.
std::vector<Range> group_min_max_ref(const float* x, const GroupIndex& index, std::string_view where);

// Fails with the position of the first non-finite value of x (call when one is known to exist).
[[noreturn]] void fail_non_finite(const float* x, int64_t rows, int64_t cols, std::string_view where);

}  // namespace tquant
