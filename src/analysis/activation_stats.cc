#include "analysis/activation_stats.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tquant::analysis {

// The unpadded rows of one activation, with the token each belongs to.
struct ActivationStats::Rows {
  std::vector<int64_t> row;  // row index into the [rows, C] view of the activation
  std::vector<int64_t> sample;
  std::vector<int32_t> position, id;
  std::vector<TokenKind> kind;
  size_t size() const { return row.size(); }
};

namespace {

// Rows per chunk of the parallel reductions. Fixed (not per thread), so that the order in
// which partial moments are merged, and hence the result, does not depend on the thread count.
constexpr size_t kChunkRows = 64;

size_t chunk_count(size_t rows) { return (rows + kChunkRows - 1) / kChunkRows; }

}  // namespace

ActivationStats::ActivationStats(std::function<bool(const std::string&)> select, TokenClassifier classify,
                                 Options options)
    : select_(std::move(select)), classify_(std::move(classify)), options_(options) {}

void ActivationStats::on_activation(const std::string& point, Tensor& x, const BatchInfo& batch) {
  if (x.ndim() != 2 && x.ndim() != 3) return;
  if (x.dim(0) != batch.batch || (x.ndim() == 3 && x.dim(1) != batch.seq)) return;
  if (!select_(point)) return;

  auto it = index_.find(point);
  if (it == index_.end()) {
    if (attributing_) fail("analysis: point {} appeared only in the second pass over the data", point);
    it = index_.emplace(point, points_.size()).first;
    PointStats p;
    p.name = point;
    p.layer = batch.layer;
    p.channels = x.cols();
    p.channel_min.assign(p.channels, INFINITY);
    p.channel_max.assign(p.channels, -INFINITY);
    points_.push_back(std::move(p));
  }
  PointStats& p = points_[it->second];
  if (x.cols() != p.channels)
    fail("analysis: point {} has {} channels in this batch but {} before", point, x.cols(), p.channels);

  // [B, T, C]: every unpadded position; [B, C] (pooler, classifier): one row per sequence,
  // attributed to its first token, the one the pooler reads.
  Rows rows;
  const bool per_token = x.ndim() == 3;
  for (int b = 0; b < batch.batch; ++b) {
    const int len = per_token ? batch.lengths[b] : 1;
    for (int t = 0; t < len; ++t) {
      const int32_t id = batch.ids[static_cast<int64_t>(b) * batch.seq + t];
      rows.row.push_back(per_token ? static_cast<int64_t>(b) * batch.seq + t : b);
      rows.sample.push_back(first_sample_ + b);
      rows.position.push_back(t);
      rows.id.push_back(id);
      rows.kind.push_back(classify_(id));
    }
  }
  if (attributing_)
    attribute(p, x, rows);
  else
    observe(p, x, rows);
}

void ActivationStats::observe(PointStats& p, const Tensor& x, const Rows& rows) {
  const int64_t C = p.channels;
  const float* data = x.data();
  const size_t chunks = chunk_count(rows.size());
  std::vector<Moments> partial(chunks);
#pragma omp parallel for schedule(static)
  for (size_t k = 0; k < chunks; ++k) {
    const size_t end = std::min(rows.size(), (k + 1) * kChunkRows);
    // Runs of consecutive rows are contiguous memory: add them in one go.
    for (size_t i = k * kChunkRows; i < end;) {
      size_t j = i + 1;
      while (j < end && rows.row[j] == rows.row[j - 1] + 1) ++j;
      partial[k].add(data + rows.row[i] * C, static_cast<int64_t>(j - i) * C);
      i = j;
    }
  }
  for (const Moments& m : partial) p.moments.merge(m);

  constexpr int64_t kBlock = 64;
#pragma omp parallel for schedule(static)
  for (int64_t c0 = 0; c0 < C; c0 += kBlock) {
    const int64_t c1 = std::min(C, c0 + kBlock);
    for (size_t i = 0; i < rows.size(); ++i) {
      const float* r = data + rows.row[i] * C;
      for (int64_t c = c0; c < c1; ++c) {
        p.channel_min[c] = std::min(p.channel_min[c], r[c]);
        p.channel_max[c] = std::max(p.channel_max[c], r[c]);
      }
    }
  }
  p.tokens += static_cast<int64_t>(rows.size());
}

void ActivationStats::find_outliers(PointStats& p) const {
  const int64_t C = p.channels;
  double sum = 0;
  for (int64_t c = 0; c < C; ++c) sum += p.channel_max_abs(c);
  p.dim_max_mean = sum / C;
  double ss = 0;
  for (int64_t c = 0; c < C; ++c) ss += (p.channel_max_abs(c) - p.dim_max_mean) * (p.channel_max_abs(c) - p.dim_max_mean);
  p.dim_max_std = std::sqrt(ss / C);
  p.dim_threshold = p.dim_max_mean + options_.sigmas * p.dim_max_std;
  p.outlier_dims.clear();
  for (int64_t c = 0; c < C; ++c)
    if (p.dim_max_std > 0 && p.channel_max_abs(c) > p.dim_threshold) p.outlier_dims.push_back(static_cast<int32_t>(c));
  // Largest first; ties keep channel order so the listing is deterministic.
  std::stable_sort(p.outlier_dims.begin(), p.outlier_dims.end(),
                   [&](int32_t a, int32_t b) { return p.channel_max_abs(a) > p.channel_max_abs(b); });
  if (!p.outlier_dims.empty()) {
    const size_t n = std::min(p.outlier_dims.size(), static_cast<size_t>(options_.inspect_dims));
    p.inspected_dims.assign(p.outlier_dims.begin(), p.outlier_dims.begin() + n);
  } else if (C > 0) {
    int32_t best = 0;
    for (int32_t c = 1; c < C; ++c)
      if (p.channel_max_abs(c) > p.channel_max_abs(best)) best = c;
    p.inspected_dims = {best};
  }
  p.top_tokens.assign(p.inspected_dims.size(), {});
}

void ActivationStats::start_attribution() {
  if (attributing_) fail("analysis: the attribution pass was started twice");
  for (PointStats& p : points_) find_outliers(p);
  attributing_ = true;
}

void ActivationStats::attribute(PointStats& p, const Tensor& x, const Rows& rows) {
  const int64_t C = p.channels;
  const float* data = x.data();
  const double mean = p.moments.mean(), limit = options_.sigmas * p.moments.stddev();

  // Values beyond k sigma, by the kind of token that carries them (integer counts: exact).
  const size_t chunks = chunk_count(rows.size());
  std::vector<std::array<int64_t, kTokenKinds>> beyond(chunks, std::array<int64_t, kTokenKinds>{});
#pragma omp parallel for schedule(static)
  for (size_t k = 0; k < chunks; ++k) {
    const size_t end = std::min(rows.size(), (k + 1) * kChunkRows);
    for (size_t i = k * kChunkRows; i < end; ++i) {
      const float* r = data + rows.row[i] * C;
      int64_t n = 0;
      for (int64_t c = 0; c < C; ++c) n += std::abs(r[c] - mean) > limit;
      beyond[k][static_cast<int>(rows.kind[i])] += n;
    }
  }
  for (const auto& b : beyond)
    for (int k = 0; k < kTokenKinds; ++k) {
      p.beyond_6sigma_by_kind[k] += b[k];
      p.beyond_6sigma += b[k];
    }

  for (size_t i = 0; i < rows.size(); ++i) {
    const int kind = static_cast<int>(rows.kind[i]);
    p.tokens_by_kind[kind] += 1;
    const float* r = data + rows.row[i] * C;
    for (int32_t d : p.outlier_dims) p.outlier_abs_by_kind[kind] += std::abs(r[d]);
  }

  // Per inspected dim, the distinct token ids with the largest |x| (each at its largest
  // occurrence): one token repeated in every window (BOS) would otherwise fill the whole list.
  // The kept values only grow, so an id dropped from the list can never have belonged in it.
  // Strictly larger replaces: the earliest occurrence wins a tie.
  const size_t keep = static_cast<size_t>(options_.top_tokens);
  auto larger = [](const TokenValue& a, const TokenValue& b) { return std::abs(a.value) > std::abs(b.value); };
  for (size_t k = 0; k < p.inspected_dims.size(); ++k) {
    auto& top = p.top_tokens[k];
    const int32_t d = p.inspected_dims[k];
    for (size_t i = 0; i < rows.size(); ++i) {
      const TokenValue tv{rows.id[i], rows.sample[i], rows.position[i], data[rows.row[i] * C + d]};
      auto same = std::find_if(top.begin(), top.end(), [&](const TokenValue& t) { return t.id == tv.id; });
      if (same != top.end()) {
        if (!larger(tv, *same)) continue;
        top.erase(same);
      } else if (top.size() == keep && !larger(tv, top.back())) {
        continue;
      }
      top.insert(std::upper_bound(top.begin(), top.end(), tv, larger), tv);
      if (top.size() > keep) top.pop_back();
    }
  }
}

}  // namespace tquant::analysis
