#include "analysis/analysis_json.h"

#include <cmath>

namespace tquant::analysis {

namespace json = nlohmann;

namespace {

// NaN (e.g. the kurtosis of a constant) and infinities have no JSON spelling: null.
json::json number(double v) { return std::isfinite(v) ? json::json(v) : json::json(nullptr); }

json::json token_json(const TokenCatalog& catalog, int32_t id) {
  return {{"id", id}, {"token", catalog.piece(id)}, {"text", catalog.text(id)}, {"kind", token_kind_name(catalog.kind(id))}};
}

// Shares of a per-kind total; null when the total is zero (nothing to share).
json::json shares(const double* by_kind) {
  double total = 0;
  for (int k = 0; k < kTokenKinds; ++k) total += by_kind[k];
  if (total <= 0) return nullptr;
  json::json j;
  for (int k = 0; k < kTokenKinds; ++k) j[token_kind_name(static_cast<TokenKind>(k))] = by_kind[k] / total;
  return j;
}

json::json point_json(const PointStats& p, const TokenCatalog& catalog) {
  const double values = static_cast<double>(p.moments.count());
  json::json j = {{"name", p.name},
                  {"layer", p.layer},
                  {"channels", p.channels},
                  {"tokens", p.tokens},
                  {"values", p.moments.count()},
                  {"min", number(p.moments.min())},
                  {"max", number(p.moments.max())},
                  {"mean", number(p.moments.mean())},
                  {"std", number(p.moments.stddev())},
                  {"kurtosis", number(p.moments.kurtosis())}};
  json::json by_kind;
  for (int k = 0; k < kTokenKinds; ++k) by_kind[token_kind_name(static_cast<TokenKind>(k))] = p.beyond_6sigma_by_kind[k];
  j["beyond_6sigma"] = {{"count", p.beyond_6sigma}, {"fraction", values > 0 ? p.beyond_6sigma / values : 0.0},
                        {"by_kind", by_kind}};
  j["channel_min"] = p.channel_min;
  j["channel_max"] = p.channel_max;
  j["outlier_rule"] = {{"mean_of_channel_max_abs", p.dim_max_mean},
                       {"std_of_channel_max_abs", p.dim_max_std},
                       {"threshold", p.dim_threshold}};
  json::json dims = json::json::array();
  for (int32_t d : p.outlier_dims)
    dims.push_back({{"dim", d}, {"max_abs", p.channel_max_abs(d)}, {"min", p.channel_min[d]}, {"max", p.channel_max[d]}});
  j["outlier_dims"] = dims;

  json::json carriers = json::json::array();
  const bool outliers = !p.outlier_dims.empty();
  for (size_t k = 0; k < p.inspected_dims.size(); ++k) {
    const int32_t d = p.inspected_dims[k];
    json::json top = json::json::array();
    for (const TokenValue& t : p.top_tokens[k]) {
      json::json e = token_json(catalog, t.id);
      e["sample"] = t.sample;
      e["position"] = t.position;
      e["value"] = t.value;
      top.push_back(e);
    }
    carriers.push_back({{"dim", d}, {"outlier", outliers}, {"max_abs", p.channel_max_abs(d)}, {"top_tokens", top}});
  }
  j["carriers"] = carriers;

  double tokens[kTokenKinds], beyond[kTokenKinds];
  for (int k = 0; k < kTokenKinds; ++k) {
    tokens[k] = static_cast<double>(p.tokens_by_kind[k]);
    beyond[k] = static_cast<double>(p.beyond_6sigma_by_kind[k]);
  }
  j["token_share"] = shares(tokens);
  j["outlier_magnitude_share"] = outliers ? shares(p.outlier_abs_by_kind.data()) : json::json(nullptr);
  j["beyond_6sigma_share"] = shares(beyond);
  return j;
}

json::json definitions() {
  return {
      {"values", "all unpadded tokens of all windows; [B, C] points (pooler, classifier) count one row per window, "
                 "attributed to its first token"},
      {"std", "population standard deviation (divided by n)"},
      {"kurtosis", "Pearson's kurtosis E[(x-mean)^4]/std^4 over all values of the point (normal = 3, not 0); null "
                   "when all values are equal"},
      {"beyond_6sigma", "values with |x - mean| > 6 std (mean and std of the whole point)"},
      {"channel_min/channel_max", "per embedding dimension (last axis), over all analysed tokens; max |x| of a "
                                  "channel = max(-channel_min, channel_max)"},
      {"outlier_dims", "channels whose max |x| exceeds mean + 6 std of the per-channel max |x| values (population "
                       "std over the channels), largest first; with fewer than 38 channels none can qualify"},
      {"carriers", "for the first 8 outlier dims (or, with none, the channel of largest max |x|, outlier=false): "
                   "the 5 distinct token ids with the largest |x| in that dim, each at its largest occurrence"},
      {"token_kinds", "special: the tokenizer's BOS/EOS/[CLS]/[SEP] and the ids its post-processor adds; delimiter: "
                      "a token that decodes to punctuation (Unicode P*) and/or whitespace only, or to nothing; "
                      "other: the rest"},
      {"token_share", "fraction of analysed tokens of each kind: the baseline for the shares below"},
      {"outlier_magnitude_share", "of the sum of |x| over all outlier dims and tokens, the fraction at tokens of "
                                  "each kind; null without outlier dims"},
      {"beyond_6sigma_share", "of the values beyond 6 std, the fraction at tokens of each kind"},
      {"attention", "per head from layers.N.attn.probs over each query row's visible keys (causal: keys <= query), "
                    "averaged over all query rows: special_mass / delimiter_mass = probability on special / "
                    "delimiter keys; noop_mass = their sum; entropy = -sum p ln p (nats); uniform_special / "
                    "uniform_delimiter = the same masses under uniform attention over the visible keys"},
      {"attention_scores", "layers.N.attn.scores (raw Q.K^T before the 1/sqrt(d) scaling) over visible entries, all "
                           "heads"},
  };
}

}  // namespace

json::json analysis_json(const AnalysisResult& r, const ModelConfig& cfg, const TokenCatalog& catalog,
                         const Provenance& prov) {
  json::json j;
  j["format"] = "tquant-analysis/1";
  j["model"] = {{"path", prov.model_dir},     {"architecture", cfg.architecture}, {"layers", cfg.layers},
                {"hidden", cfg.hidden},       {"heads", cfg.heads},               {"kv_heads", cfg.kv_heads},
                {"vocab_size", cfg.vocab_size}, {"max_positions", cfg.max_positions}, {"causal", cfg.is_causal()}};
  j["data"] = {{"path", prov.data_path}, {"tokens", r.data_tokens}};
  json::json prefix = json::json::array(), suffix = json::json::array();
  for (int32_t id : r.special_template.prefix) prefix.push_back(token_json(catalog, id));
  for (int32_t id : r.special_template.suffix) suffix.push_back(token_json(catalog, id));
  j["windows"] = {{"samples", r.starts.size()},
                  {"samples_requested", prov.samples_requested},
                  {"seq_len", r.seq_len},
                  {"seq_len_requested", prov.seq_len_requested},
                  {"seq_len_capped", r.seq_len_capped},
                  {"text_tokens", r.window_text_tokens},
                  {"selection", prov.seed ? "random starts from mt19937_64(seed), start = draw mod (tokens - text_tokens + 1)"
                                          : "evenly spaced: start_i = floor(i * (tokens - text_tokens) / (samples - 1))"},
                  {"seed", prov.seed ? json::json(*prov.seed) : json::json(nullptr)},
                  {"starts", r.starts},
                  {"prefix", prefix},
                  {"suffix", suffix}};
  j["tokens_analysed"] = r.tokens;
  json::json special = json::json::array();
  for (int32_t id : catalog.special_ids()) special.push_back(token_json(catalog, id));
  j["special_tokens"] = special;
  j["point_globs"] = prov.point_globs;
  j["definitions"] = definitions();

  json::json points = json::json::array();
  for (const PointStats& p : r.points) points.push_back(point_json(p, catalog));
  j["points"] = points;

  json::json heads = json::json::array();
  for (const HeadStats& h : r.heads)
    heads.push_back({{"layer", h.layer},
                     {"head", h.head},
                     {"rows", h.rows},
                     {"special_mass", h.special_mass},
                     {"delimiter_mass", h.delimiter_mass},
                     {"noop_mass", h.noop_mass()},
                     {"uniform_special", h.uniform_special},
                     {"uniform_delimiter", h.uniform_delimiter},
                     {"entropy", h.entropy}});
  json::json scores = json::json::array();
  for (const ScoreStats& s : r.scores)
    scores.push_back({{"layer", s.layer},
                      {"values", s.moments.count()},
                      {"min", number(s.moments.min())},
                      {"max", number(s.moments.max())},
                      {"mean", number(s.moments.mean())},
                      {"std", number(s.moments.stddev())},
                      {"kurtosis", number(s.moments.kurtosis())}});
  json::json maps = json::json::array();
  for (const CapturedAttention& m : r.attention_maps) {
    json::json toks = json::json::array();
    for (int32_t id : m.ids) toks.push_back(token_json(catalog, id));
    json::json rows = json::json::array();
    for (int i = 0; i < m.tokens; ++i)
      rows.push_back(std::vector<float>(m.probs.begin() + static_cast<size_t>(i) * m.tokens,
                                        m.probs.begin() + static_cast<size_t>(i + 1) * m.tokens));
    maps.push_back({{"layer", m.layer}, {"head", m.head}, {"sample", m.sample}, {"tokens", toks}, {"probs", rows}});
  }
  j["attention"] = {{"heads", heads}, {"scores", scores}, {"maps", maps}};
  return j;
}

}  // namespace tquant::analysis
