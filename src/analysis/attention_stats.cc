#include "analysis/attention_stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace tquant::analysis {

namespace {

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::char_traits<char>::length(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// Keys a query row may see: the forward pass masks the same ones (forward.cc).
int64_t visible_keys(const BatchInfo& batch, int b, int64_t i) {
  return batch.causal ? std::min<int64_t>(batch.lengths[b], i + 1) : batch.lengths[b];
}

}  // namespace

void AttentionStats::on_activation(const std::string& point, Tensor& x, const BatchInfo& batch) {
  if (x.ndim() != 4 || batch.layer < 0) return;
  const bool probs = ends_with(point, ".attn.probs");
  if (!probs && !ends_with(point, ".attn.scores")) return;
  const int B = batch.batch, T = batch.seq;
  const int H = static_cast<int>(x.dim(1));

  if (!probs) {
    // One partial per (sequence, head), merged in index order: thread-count independent.
    std::vector<Moments> partial(static_cast<size_t>(B) * H);
#pragma omp parallel for schedule(static)
    for (int64_t bh = 0; bh < int64_t{B} * H; ++bh) {
      const int b = static_cast<int>(bh / H);
      for (int64_t i = 0; i < batch.lengths[b]; ++i) partial[bh].add(x.data() + (bh * T + i) * T, visible_keys(batch, b, i));
    }
    Moments& m = scores_[batch.layer];
    for (const Moments& p : partial) m.merge(p);
    return;
  }

  // Kinds of every key, and running counts so the uniform baseline of a row is O(1).
  std::vector<TokenKind> kind(static_cast<size_t>(B) * T);
  std::vector<int64_t> n_special(static_cast<size_t>(B) * (T + 1), 0), n_delim(n_special.size(), 0);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) {
      const size_t at = static_cast<size_t>(b) * T + t, cnt = static_cast<size_t>(b) * (T + 1) + t;
      kind[at] = t < batch.lengths[b] ? classify_(batch.ids[at]) : TokenKind::Other;
      n_special[cnt + 1] = n_special[cnt] + (kind[at] == TokenKind::Special);
      n_delim[cnt + 1] = n_delim[cnt] + (kind[at] == TokenKind::Delimiter);
    }

  std::vector<Sums> partial(static_cast<size_t>(B) * H);
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < int64_t{B} * H; ++bh) {
    const int b = static_cast<int>(bh / H);
    Sums& s = partial[bh];
    for (int64_t i = 0; i < batch.lengths[b]; ++i) {
      const float* p = x.data() + (bh * T + i) * T;
      const int64_t vis = visible_keys(batch, b, i);
      double sp = 0, de = 0, ent = 0;
      for (int64_t j = 0; j < vis; ++j) {
        const TokenKind k = kind[static_cast<size_t>(b) * T + j];
        if (k == TokenKind::Special) sp += p[j];
        if (k == TokenKind::Delimiter) de += p[j];
        if (p[j] > 0) ent -= p[j] * std::log(static_cast<double>(p[j]));
      }
      const size_t cnt = static_cast<size_t>(b) * (T + 1);
      s.rows += 1;
      s.special += sp;
      s.delimiter += de;
      s.entropy += ent;
      s.uniform_special += static_cast<double>(n_special[cnt + vis]) / vis;
      s.uniform_delimiter += static_cast<double>(n_delim[cnt + vis]) / vis;
    }
  }
  for (int64_t bh = 0; bh < int64_t{B} * H; ++bh) {
    Sums& acc = heads_[{batch.layer, static_cast<int>(bh % H)}];
    const Sums& s = partial[bh];
    acc.rows += s.rows;
    acc.special += s.special;
    acc.delimiter += s.delimiter;
    acc.entropy += s.entropy;
    acc.uniform_special += s.uniform_special;
    acc.uniform_delimiter += s.uniform_delimiter;
  }
}

std::vector<HeadStats> AttentionStats::heads() const {
  std::vector<HeadStats> out;
  for (const auto& [key, s] : heads_) {
    HeadStats h;
    h.layer = key.first;
    h.head = key.second;
    h.rows = s.rows;
    if (s.rows > 0) {
      h.special_mass = s.special / s.rows;
      h.delimiter_mass = s.delimiter / s.rows;
      h.entropy = s.entropy / s.rows;
      h.uniform_special = s.uniform_special / s.rows;
      h.uniform_delimiter = s.uniform_delimiter / s.rows;
    }
    out.push_back(h);
  }
  return out;
}

std::vector<ScoreStats> AttentionStats::scores() const {
  std::vector<ScoreStats> out;
  for (const auto& [layer, m] : scores_) out.push_back({layer, m});
  return out;
}

AttentionCapture::AttentionCapture(int layer, int head, int64_t sample, int max_tokens)
    : point_(fmt::format("layers.{}.attn.probs", layer)), max_tokens_(max_tokens) {
  result_.layer = layer;
  result_.head = head;
  result_.sample = sample;
}

void AttentionCapture::on_activation(const std::string& point, Tensor& x, const BatchInfo& batch) {
  if (point != point_ || x.ndim() != 4) return;
  const int64_t b = result_.sample - first_sample_;
  if (b < 0 || b >= batch.batch || result_.head >= x.dim(1)) return;
  const int T = batch.seq;
  const int n = std::min(max_tokens_, batch.lengths[b]);
  result_.tokens = n;
  result_.ids.assign(batch.ids + b * T, batch.ids + b * T + n);
  result_.probs.assign(static_cast<size_t>(n) * n, 0.f);
  const float* p = x.data() + (b * x.dim(1) + result_.head) * T * T;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) result_.probs[static_cast<size_t>(i) * n + j] = p[static_cast<int64_t>(i) * T + j];
}

}  // namespace tquant::analysis
