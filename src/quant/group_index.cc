#include "quant/group_index.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "quant/minmax_scan.h"

namespace tquant {

GroupIndex::GroupIndex(const Grouping& g, int64_t rows, int64_t cols, std::string_view where)
    : grouping_(g), rows_(rows), cols_(cols) {
  if (g.granularity == Granularity::PerToken)
    fail("{}: per_token ranges are computed at run time; there is nothing to calibrate", where);
  groups_ = group_count(g, rows, cols, where);
  within_rows_ = groups_within_rows(g);
  if (g.granularity == Granularity::PerGroup) per_row_ = cols / g.group_size;
  if (within_rows_) return;
  columns_.resize(groups_);
  if (g.granularity == Granularity::PerTensor) {
    columns_[0].resize(cols);
    std::iota(columns_[0].begin(), columns_[0].end(), 0);
  } else {
    for (int64_t c = 0; c < cols; ++c)
      columns_[g.granularity == Granularity::PerChannel ? c : g.channel_group[c]].push_back(
          static_cast<int32_t>(c));
  }
}

int64_t GroupIndex::row_of(int64_t k) const {
  return grouping_.granularity == Granularity::PerGroup ? k / per_row_ : k;
}

int64_t GroupIndex::col_begin(int64_t k) const {
  return grouping_.granularity == Granularity::PerGroup ? (k % per_row_) * grouping_.group_size : 0;
}

int64_t GroupIndex::col_end(int64_t k) const {
  return grouping_.granularity == Granularity::PerGroup ? col_begin(k) + grouping_.group_size : cols_;
}

int64_t GroupIndex::count(int64_t k) const {
  if (within_rows_) return col_end(k) - col_begin(k);
  return rows_ * static_cast<int64_t>(columns_[k].size());
}

void GroupIndex::gather(const float* x, int64_t k, std::vector<float>& out) const {
  if (within_rows_) {
    const float* row = x + row_of(k) * cols_;
    out.insert(out.end(), row + col_begin(k), row + col_end(k));
    return;
  }
  if (grouping_.granularity == Granularity::PerTensor) {
    out.insert(out.end(), x, x + rows_ * cols_);
    return;
  }
  const std::vector<int32_t>& cs = columns_[k];
  const size_t start = out.size();
  out.resize(start + rows_ * cs.size());
  float* dst = out.data() + start;
  for (int64_t r = 0; r < rows_; ++r)
    for (int32_t c : cs) *dst++ = x[r * cols_ + c];
}

void fail_non_finite(const float* x, int64_t rows, int64_t cols, std::string_view where) {
  for (int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(x[i]))
      fail("{}: non-finite value {} at row {}, column {} (ranges need finite data)", where, x[i],
           i / cols, i % cols);
  fail("{}: non-finite value in the data", where);
}

namespace {

constexpr int64_t kParallelMin = 1 << 15;

}  // namespace

std::vector<Range> group_min_max(const float* x, const GroupIndex& index, std::string_view where) {
  const int64_t rows = index.rows(), cols = index.cols(), total = rows * cols;
  const bool par = total >= kParallelMin;
  if (total == 0) fail("{}: cannot take a range of an empty batch [{}, {}]", where, rows, cols);
  std::vector<Range> out(index.groups());
  int bad = 0;
  if (index.within_rows()) {
#pragma omp parallel for schedule(static) reduction(| : bad) if (par)
    for (int64_t k = 0; k < index.groups(); ++k) {
      const int64_t b = index.col_begin(k);
      const MinMaxScan m = minmax_scan(x + index.row_of(k) * cols + b, index.col_end(k) - b);
      out[k] = {m.lo, m.hi};
      bad |= m.bad;
    }
  } else if (index.grouping().granularity == Granularity::PerTensor) {
    // min and max are exact, so combining per-row results in any order gives the same answer
    // (up to the sign of zero, normalised below).
    std::vector<MinMaxScan> per_row(rows);
#pragma omp parallel for schedule(static) if (par)
    for (int64_t r = 0; r < rows; ++r) per_row[r] = minmax_scan(x + r * cols, cols);
    MinMaxScan m = per_row[0];
    for (const MinMaxScan& p : per_row) {
      m.lo = std::min(m.lo, p.lo);
      m.hi = std::max(m.hi, p.hi);
      m.bad |= p.bad;
    }
    out[0] = {m.lo, m.hi};
    bad = m.bad;
  } else {
    // Column groups: per-column min/max with a vectorisable pass per row, split over column
    // blocks so each thread owns its columns, then folded into groups.
    std::vector<float> lo(x, x + cols), hi(x, x + cols);
    constexpr int64_t kBlock = 256;
    const int64_t blocks = (cols + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) reduction(| : bad) if (par)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c0 = b * kBlock, c1 = std::min(cols, c0 + kBlock);
      int blk_bad = 0;
      for (int64_t r = 0; r < rows; ++r) {
        const float* row = x + r * cols;
        for (int64_t c = c0; c < c1; ++c) {
          const float v = row[c];
          blk_bad |= (v - v) != 0.f;
          lo[c] = v < lo[c] ? v : lo[c];
          hi[c] = v > hi[c] ? v : hi[c];
        }
      }
      bad |= blk_bad;
    }
    for (int64_t k = 0; k < index.groups(); ++k) {
      const std::vector<int32_t>& cs = index.columns_of(k);
      Range r{lo[cs[0]], hi[cs[0]]};
      for (int32_t c : cs) {
        r.lo = std::min(r.lo, lo[c]);
        r.hi = std::max(r.hi, hi[c]);
      }
      out[k] = r;
    }
  }
  if (bad) fail_non_finite(x, rows, cols, where);
  for (Range& r : out) r = {r.lo + 0.f, r.hi + 0.f};  // -0 -> +0
  return out;
}

std::vector<Range> group_min_max_ref(const float* x, const GroupIndex& index, std::string_view where) {
  if (index.rows() * index.cols() == 0)
    fail("{}: cannot take a range of an empty batch [{}, {}]", where, index.rows(), index.cols());
  std::vector<Range> out(index.groups());
  std::vector<float> v;
  for (int64_t k = 0; k < index.groups(); ++k) {
    v.clear();
    index.gather(x, k, v);
    float lo = v[0], hi = v[0];
    for (float e : v) {
      if (!std::isfinite(e)) fail_non_finite(x, index.rows(), index.cols(), where);
      lo = std::min(lo, e);
      hi = std::max(hi, e);
    }
    out[k] = {lo + 0.f, hi + 0.f};
  }
  return out;
}

}  // namespace tquant
