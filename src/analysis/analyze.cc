#include "analysis/analyze.h"

#include <fnmatch.h>

#include <algorithm>
#include <memory>

#include "core/error.h"

namespace tquant::analysis {

bool point_selected(const std::vector<std::string>& globs, const std::string& name) {
  if (globs.empty()) return true;
  for (const auto& g : globs)
    if (fnmatch(g.c_str(), name.c_str(), 0) == 0) return true;
  return false;
}

namespace {

// One pass over all windows in fixed batches, telling the hooks where each batch starts.
void run_pass(const Model& model, const std::vector<int32_t>& tokens, const AnalysisResult& r,
              const AnalysisOptions& o, int pass, const Hooks& hooks,
              const std::function<void(int64_t)>& set_first_sample) {
  const size_t n = r.starts.size(), step = static_cast<size_t>(std::max(1, o.batch));
  for (size_t first = 0; first < n; first += step) {
    const size_t count = std::min(step, n - first);
    set_first_sample(static_cast<int64_t>(first));
    model.forward(window_batch(tokens, r.starts, r.window_text_tokens, r.special_template, first, count), &hooks);
    if (o.progress) o.progress(pass, first + count, n);
  }
}

}  // namespace

AnalysisResult analyze(const Model& model, const TokenCatalog& catalog, const SpecialTemplate& special,
                       const std::vector<int32_t>& data_tokens, const AnalysisOptions& o) {
  const ModelConfig& cfg = model.config();
  AnalysisResult r;
  if (o.seq_len < 1) fail("--seq-len must be at least 1, got {}", o.seq_len);
  r.seq_len = o.seq_len;
  if (cfg.max_positions > 0 && r.seq_len > cfg.max_positions) {
    r.seq_len = cfg.max_positions;
    r.seq_len_capped = true;
  }
  r.special_template = special;
  r.data_tokens = static_cast<int64_t>(data_tokens.size());
  r.window_text_tokens = r.seq_len - static_cast<int64_t>(special.size());
  if (r.window_text_tokens < 1)
    fail("--seq-len {} leaves no room for text next to the {} special tokens the tokenizer adds", r.seq_len,
         special.size());
  if (r.window_text_tokens > r.data_tokens)
    fail("the data holds {} tokens, fewer than the {} text tokens of one window (--seq-len {}); lower --seq-len",
         r.data_tokens, r.window_text_tokens, r.seq_len);
  r.starts = window_starts(r.data_tokens, r.window_text_tokens, o.samples, o.seed);
  r.tokens = static_cast<int64_t>(r.starts.size()) * r.seq_len;

  const TokenClassifier classify = catalog.classifier();
  auto activations = std::make_shared<ActivationStats>(
      [&](const std::string& name) { return point_selected(o.point_globs, name); }, classify);
  auto attention = std::make_shared<AttentionStats>(classify);

  Hooks observe;
  observe.add(activations);
  observe.add(attention);
  run_pass(model, data_tokens, r, o, 1, observe, [&](int64_t s) { activations->set_first_sample(s); });
  if (!o.point_globs.empty() && activations->points().empty())
    fail("--points matches none of the model's [B, T, C] points (names as in docs/hooks.md, e.g. "
         "\"layers.*.ffn.residual_sum\")");
  r.heads = attention->heads();
  r.scores = attention->scores();

  // Pass 2: attribution, plus the heatmaps of the most and the least "no-op" head.
  activations->start_attribution();
  Hooks attribute;
  attribute.add(activations);
  std::vector<std::shared_ptr<AttentionCapture>> captures;
  if (!r.heads.empty()) {
    auto by_noop = [](const HeadStats& a, const HeadStats& b) { return a.noop_mass() < b.noop_mass(); };
    const HeadStats& most = *std::max_element(r.heads.begin(), r.heads.end(), by_noop);
    const HeadStats& least = *std::min_element(r.heads.begin(), r.heads.end(), by_noop);
    captures.push_back(std::make_shared<AttentionCapture>(most.layer, most.head, 0, o.heatmap_tokens));
    if (least.layer != most.layer || least.head != most.head)
      captures.push_back(std::make_shared<AttentionCapture>(least.layer, least.head, 0, o.heatmap_tokens));
  }
  for (auto& c : captures) attribute.add(c);
  run_pass(model, data_tokens, r, o, 2, attribute, [&](int64_t s) {
    activations->set_first_sample(s);
    for (auto& c : captures) c->set_first_sample(s);
  });
  r.points = activations->points();
  for (auto& c : captures)
    if (c->captured()) r.attention_maps.push_back(c->result());
  return r;
}

}  // namespace tquant::analysis
