#include "analysis/plots.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "analysis/svg_charts.h"
#include "analysis/token_kinds.h"

namespace tquant::analysis {

namespace json = nlohmann;

namespace {

const json::json* find_point(const json::json& a, const std::string& name) {
  for (const auto& p : a["points"])
    if (p["name"] == name) return &p;
  return nullptr;
}

double max_abs(const json::json& p) { return std::max(-p["min"].get<double>(), p["max"].get<double>()); }

double or_nan(const json::json& v) { return v.is_number() ? v.get<double>() : NAN; }

Plot channel_ranges(const json::json& p) {
  svg::RangeBarChart c;
  const std::string name = p["name"];
  c.title = fmt::format("Per-channel range of {}", name);
  c.x_label = "embedding dimension (channel)";
  c.y_label = "min .. max over all tokens";
  c.low = p["channel_min"].get<std::vector<double>>();
  c.high = p["channel_max"].get<std::vector<double>>();
  for (const auto& d : p["outlier_dims"]) c.highlight.push_back({d["dim"].get<int>(), fmt::format("dim {}", d["dim"].get<int>())});
  const double thr = p["outlier_rule"]["threshold"];
  c.ref_lines = {{thr, "outlier threshold"}, {-thr, "-threshold"}};
  const size_t n = p["outlier_dims"].size();
  return {fmt::format("channel_ranges_{}.svg", name), c.title,
          fmt::format("Each bar spans one channel's min to max over all analysed tokens; red bars are the {} outlier "
                      "dim{} (max |x| above mean + 6 std of the channel maxima, dashed lines).",
                      n, n == 1 ? "" : "s"),
          svg::range_bar_chart(c)};
}

// The point whose largest outlier dim stands furthest above the typical channel maximum.
const json::json* most_extreme_point(const json::json& a) {
  const json::json* best = nullptr;
  double best_ratio = 0;
  for (const auto& p : a["points"]) {
    if (p["outlier_dims"].empty()) continue;
    const double typical = p["outlier_rule"]["mean_of_channel_max_abs"];
    const double ratio = typical > 0 ? p["outlier_dims"][0]["max_abs"].get<double>() / typical : 0;
    if (ratio > best_ratio) best_ratio = ratio, best = &p;
  }
  return best;
}

// The residual stream and the norm outputs, one x category per layer ("emb" = embeddings).
std::vector<Plot> layer_trends(const json::json& a) {
  const int layers = a["model"]["layers"];
  std::vector<std::string> x = {"emb"};
  for (int l = 0; l < layers; ++l) x.push_back(std::to_string(l));
  struct Kind {
    const char* name;
    const char* at_embedding;  // the point at "emb", if any
  };
  const Kind kinds[] = {{"attn.residual_sum", "embed.out"},
                        {"ffn.residual_sum", "embed.out"},
                        {"attn.norm.out", "embed.norm.out"},
                        {"ffn.norm.out", "embed.norm.out"}};
  svg::LineChart range, kurt;
  for (const Kind& k : kinds) {
    svg::LineChart::Series r{k.name, std::vector<double>(x.size(), NAN)}, q{k.name, r.y};
    bool any = false;
    for (size_t i = 0; i < x.size(); ++i) {
      const json::json* p = find_point(a, i == 0 ? std::string(k.at_embedding) : fmt::format("layers.{}.{}", i - 1, k.name));
      if (!p) continue;
      any = true;
      r.y[i] = max_abs(*p);
      q.y[i] = or_nan((*p)["kurtosis"]);
    }
    if (!any) continue;
    range.series.push_back(r);
    kurt.series.push_back(q);
  }
  if (range.series.empty()) return {};
  range.x_labels = kurt.x_labels = x;
  range.x_label = kurt.x_label = "layer (emb = embedding output)";
  range.title = "Largest |x| of the residual stream and the norm outputs per layer";
  range.y_label = "max |x| over all tokens and channels (log)";
  range.log_y = true;
  kurt.title = "Kurtosis of the residual stream and the norm outputs per layer";
  kurt.y_label = "Pearson kurtosis";
  kurt.ref_lines = {{3, "normal distribution (3)"}};
  return {{"layer_ranges.svg", range.title,
           "How far the largest values reach at each layer; a per-tensor quantizer's range must cover them.",
           svg::line_chart(range)},
          {"layer_kurtosis.svg", kurt.title,
           "Heavy tails (kurtosis far above 3) mean a few large values dominate the range.", svg::line_chart(kurt)}};
}

Plot attention_map(const json::json& a, const json::json& m, const char* which) {
  svg::Heatmap h;
  const int n = static_cast<int>(m["tokens"].size());
  const int layer = m["layer"], head = m["head"];
  h.rows = h.cols = n;
  for (const auto& row : m["probs"])
    for (const auto& v : row) h.values.push_back(v.get<double>());
  // Token labels fit only while the cells are large enough to hold a line of text.
  if (n <= 48)
    for (const auto& t : m["tokens"]) {
      h.row_labels.push_back(token_label(t));
      h.col_labels.push_back(h.row_labels.back());
    }
  const int seq = a["windows"]["seq_len"];
  h.title = fmt::format("Attention of layer {} head {} ({}), window {}{}", layer, head, which, m["sample"].get<int64_t>(),
                        n < seq ? fmt::format(", first {} of {} positions", n, seq) : "");
  h.x_label = "key token";
  h.y_label = "query token";
  h.value_label = "attention probability";
  h.vmin = 0;
  h.vmax = 1;
  h.cell = n <= 48 ? 16 : 0;
  return {fmt::format("attention_layer{}_head{}.svg", layer, head), h.title,
          "Row = query, column = key; a bright first column is attention parked on the special token.",
          svg::heatmap(h)};
}

Plot head_heatmap(const json::json& a, const char* field, const char* what, const char* file) {
  svg::Heatmap h;
  const int layers = a["model"]["layers"], heads = a["model"]["heads"];
  h.rows = layers;
  h.cols = heads;
  h.values.assign(static_cast<size_t>(layers) * heads, NAN);
  for (const auto& e : a["attention"]["heads"]) {
    const int l = e["layer"], hd = e["head"];
    if (l < layers && hd < heads) h.values[static_cast<size_t>(l) * heads + hd] = e[field].get<double>();
  }
  for (int l = 0; l < layers; ++l) h.row_labels.push_back(fmt::format("layer {}", l));
  for (int k = 0; k < heads; ++k) h.col_labels.push_back(std::to_string(k));
  h.title = fmt::format("Attention mass on {} per head", what);
  h.x_label = "head";
  h.y_label = "layer";
  h.value_label = fmt::format("mean probability on {}", what);
  h.vmin = 0;
  h.vmax = 1;
  h.annotate = true;
  return {file, h.title,
          fmt::format("Average attention probability a head puts on {} (over all query rows); high values are the "
                      "\"no-op\" heads of Bondarenko et al.",
                      what),
          svg::heatmap(h)};
}

}  // namespace

std::string token_label(const json::json& t) {
  const std::string text = t["text"];
  return visible_text(text.empty() ? t["token"].get<std::string>() : text);
}

std::vector<Plot> make_plots(const json::json& a) {
  std::vector<Plot> plots;
  const int layers = a["model"]["layers"];
  const json::json* last = layers > 0 ? find_point(a, fmt::format("layers.{}.ffn.residual_sum", layers - 1)) : nullptr;
  if (last) plots.push_back(channel_ranges(*last));
  const json::json* extreme = most_extreme_point(a);
  if (extreme && extreme != last) plots.push_back(channel_ranges(*extreme));
  if (!last && !extreme && !a["points"].empty()) plots.push_back(channel_ranges(a["points"][0]));
  for (Plot& p : layer_trends(a)) plots.push_back(std::move(p));
  const auto& maps = a["attention"]["maps"];
  for (size_t i = 0; i < maps.size(); ++i) plots.push_back(attention_map(a, maps[i], i == 0 ? "most no-op" : "least no-op"));
  if (!a["attention"]["heads"].empty()) {
    plots.push_back(head_heatmap(a, "special_mass", "special tokens", "heads_special_mass.svg"));
    plots.push_back(head_heatmap(a, "delimiter_mass", "delimiters", "heads_delimiter_mass.svg"));
  }
  return plots;
}

}  // namespace tquant::analysis
