#include "analysis/html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "analysis/svg_common.h"
#include "analysis/token_kinds.h"

namespace tquant::analysis {

namespace json = nlohmann;
using svg::escape;

namespace {

constexpr const char* kStyle = R"(
body { font-family: Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1180px; color: #222; line-height: 1.4; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin-bottom: 4px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
tr.hit td { background: #fff3e0; }
code, .tok { font-family: Menlo, Consolas, monospace; font-size: 12px; }
.tok { background: #eef; padding: 0 3px; border-radius: 3px; white-space: pre; }
.special { background: #fdd; } .delimiter { background: #dfd; }
figure { margin: 16px 0 28px; } figcaption { font-size: 13px; color: #555; max-width: 900px; }
.muted { color: #777; } dl { display: grid; grid-template-columns: max-content auto; gap: 3px 14px; font-size: 14px; }
dt { font-weight: bold; } dd { margin: 0; }
)";

std::string num(const json::json& v, const char* spec = "{:.4g}") {
  if (!v.is_number()) return "n/a";
  return fmt::format(fmt::runtime(spec), v.get<double>());
}

std::string pct(double v) { return fmt::format("{:.2f}%", 100 * v); }

std::string token_html(const json::json& t) {
  const std::string kind = t["kind"];
  return fmt::format("<span class=\"tok {}\" title=\"id {} ({})\">{}</span>", kind, t["id"].get<int>(), kind,
                     escape(token_label(t)));
}

std::string share_cell(const json::json& shares, const char* kind) {
  return shares.is_object() ? pct(shares[kind].get<double>()) : "<span class=\"muted\">-</span>";
}

std::string outlier_dims_text(const json::json& p, size_t limit) {
  std::string s;
  const auto& dims = p["outlier_dims"];
  for (size_t i = 0; i < dims.size() && i < limit; ++i)
    s += fmt::format("{}{} ({})", i ? ", " : "", dims[i]["dim"].get<int>(), num(dims[i]["max_abs"], "{:.3g}"));
  if (dims.size() > limit) s += fmt::format(", … {} more", dims.size() - limit);
  return s;
}

std::vector<json::json> heads_by_noop(const json::json& a) {
  std::vector<json::json> heads(a["attention"]["heads"].begin(), a["attention"]["heads"].end());
  std::stable_sort(heads.begin(), heads.end(), [](const json::json& x, const json::json& y) {
    return x["noop_mass"].get<double>() > y["noop_mass"].get<double>();
  });
  return heads;
}

std::string head_rows(const std::vector<json::json>& heads, size_t limit) {
  std::string s =
      "<table><tr><th>layer</th><th>head</th><th>special mass</th><th>uniform baseline</th><th>delimiter mass</th>"
      "<th>uniform baseline</th><th>no-op mass</th><th>entropy (nats)</th></tr>\n";
  for (size_t i = 0; i < heads.size() && i < limit; ++i) {
    const auto& h = heads[i];
    s += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                     h["layer"].get<int>(), h["head"].get<int>(), num(h["special_mass"], "{:.3f}"),
                     num(h["uniform_special"], "{:.3f}"), num(h["delimiter_mass"], "{:.3f}"),
                     num(h["uniform_delimiter"], "{:.3f}"), num(h["noop_mass"], "{:.3f}"), num(h["entropy"], "{:.3f}"));
  }
  return s + "</table>\n";
}

std::string summary(const json::json& a) {
  const auto& m = a["model"];
  const auto& w = a["windows"];
  std::string added;
  for (const char* side : {"prefix", "suffix"})
    for (const auto& t : w[side]) added += token_html(t) + fmt::format(" ({}) ", side);
  std::string s = "<h2>Summary</h2>\n<dl>\n";
  s += fmt::format("<dt>Model</dt><dd><code>{}</code>: {}, {} layers, hidden {}, {} heads ({} KV), vocabulary {}</dd>\n",
                   escape(m["path"].get<std::string>()), escape(m["architecture"].get<std::string>()),
                   m["layers"].get<int>(), m["hidden"].get<int>(), m["heads"].get<int>(), m["kv_heads"].get<int>(),
                   m["vocab_size"].get<int>());
  s += fmt::format("<dt>Data</dt><dd><code>{}</code> ({} tokens)</dd>\n", escape(a["data"]["path"].get<std::string>()),
                   a["data"]["tokens"].get<int64_t>());
  s += fmt::format("<dt>Windows</dt><dd>{} windows of {} tokens ({} text tokens each{}), {}{}</dd>\n",
                   w["samples"].get<int>(), w["seq_len"].get<int>(), w["text_tokens"].get<int64_t>(),
                   added.empty() ? "; the tokenizer adds no special tokens" : "; added: " + added,
                   escape(w["selection"].get<std::string>()),
                   w["seq_len_capped"].get<bool>() ? " (--seq-len capped at the model's positions)" : "");
  s += fmt::format("<dt>Tokens analysed</dt><dd>{}</dd>\n", a["tokens_analysed"].get<int64_t>());
  s += "</dl>\n";

  s += "<h3>Outlier dimensions per point</h3>\n";
  std::string rows;
  size_t with = 0;
  for (const auto& p : a["points"]) {
    if (p["outlier_dims"].empty()) continue;
    ++with;
    rows += fmt::format("<tr><td class=\"l\"><code>{}</code></td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                        escape(p["name"].get<std::string>()), p["outlier_dims"].size(), outlier_dims_text(p, 6),
                        share_cell(p["outlier_magnitude_share"], "special"), share_cell(p["outlier_magnitude_share"], "delimiter"),
                        share_cell(p["token_share"], "special"));
  }
  if (with == 0) {
    s += "<p>No point has outlier dimensions (max |x| above mean + 6 std of the per-channel maxima).</p>\n";
  } else {
    s += fmt::format("<p>{} of {} points have outlier dimensions (channel max |x| above mean + 6 std of the channel "
                     "maxima). The share columns say how much of the outlier dims' total |x| sits on special tokens "
                     "and delimiters, next to the share of tokens that are special.</p>\n",
                     with, a["points"].size());
    s += "<table><tr><th class=\"l\">point</th><th>dims</th><th class=\"l\">outlier dims (max |x|)</th>"
         "<th>|x| on special</th><th>|x| on delimiters</th><th>tokens special</th></tr>\n" + rows + "</table>\n";
  }
  const auto heads = heads_by_noop(a);
  if (!heads.empty()) {
    s += "<h3>Heads with the most no-op attention</h3>\n<p>Mean attention probability on special tokens and "
         "delimiters, against what uniform attention over the same keys would give.</p>\n";
    s += head_rows(heads, 5);
  }
  return s;
}

std::string figures(const std::vector<Plot>& plots) {
  std::string s = "<h2>Plots</h2>\n";
  for (const Plot& p : plots)
    s += fmt::format("<figure id=\"{}\">\n{}<figcaption>{} <span class=\"muted\">({})</span></figcaption>\n</figure>\n",
                     escape(p.file), inline_svg(p.svg), escape(p.caption), escape(p.file));
  return s;
}

std::string point_table(const json::json& a) {
  std::string s = "<h2>Statistics per point</h2>\n<p>Over all unpadded tokens. Kurtosis is Pearson's (normal = 3). "
                  "Rows with outlier dimensions are highlighted.</p>\n"
                  "<table><tr><th class=\"l\">point</th><th>channels</th><th>min</th><th>max</th><th>mean</th><th>std</th>"
                  "<th>kurtosis</th><th>beyond 6σ</th><th class=\"l\">outlier dims (max |x|)</th></tr>\n";
  for (const auto& p : a["points"])
    s += fmt::format("<tr{}><td class=\"l\"><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                     "<td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>\n",
                     p["outlier_dims"].empty() ? "" : " class=\"hit\"", escape(p["name"].get<std::string>()),
                     p["channels"].get<int64_t>(), num(p["min"]), num(p["max"]), num(p["mean"]), num(p["std"]),
                     num(p["kurtosis"]), fmt::format("{:.4f}%", 100 * p["beyond_6sigma"]["fraction"].get<double>()),
                     outlier_dims_text(p, 4));
  return s + "</table>\n";
}

std::string carrier_table(const json::json& a) {
  std::string s = "<h2>Which tokens carry the outliers</h2>\n<p>For each point with outlier dimensions, the distinct "
                  "tokens with the largest |x| in its top outlier dims, each at its largest occurrence "
                  "(window:position). "
                  "<span class=\"tok special\">special</span> <span class=\"tok delimiter\">delimiter</span></p>\n";
  bool any = false;
  for (const auto& p : a["points"]) {
    if (p["outlier_dims"].empty()) continue;
    any = true;
    s += fmt::format("<h3><code>{}</code></h3>\n<p>Values beyond 6σ: {} ({} at special tokens, {} at delimiters; "
                     "tokens: {} special, {} delimiters).</p>\n",
                     escape(p["name"].get<std::string>()), p["beyond_6sigma"]["count"].get<int64_t>(),
                     share_cell(p["beyond_6sigma_share"], "special"), share_cell(p["beyond_6sigma_share"], "delimiter"),
                     share_cell(p["token_share"], "special"), share_cell(p["token_share"], "delimiter"));
    s += "<table><tr><th>dim</th><th>max |x|</th><th class=\"l\">largest |x| at (token, window:position, value)</th></tr>\n";
    for (const auto& c : p["carriers"]) {
      std::string toks;
      for (const auto& t : c["top_tokens"])
        toks += fmt::format("{} {}:{} ({}) &nbsp; ", token_html(t), t["sample"].get<int64_t>(), t["position"].get<int>(),
                            num(t["value"], "{:.3g}"));
      s += fmt::format("<tr><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>\n", c["dim"].get<int>(),
                       num(c["max_abs"]), toks);
    }
    s += "</table>\n";
  }
  if (!any) s += "<p>No point has outlier dimensions.</p>\n";
  return s;
}

std::string attention_tables(const json::json& a) {
  const auto heads = heads_by_noop(a);
  if (heads.empty()) return "";
  std::string s = "<h2>Attention heads</h2>\n<p>All heads, most no-op first. Averages over every query row's visible keys.</p>\n";
  s += head_rows(heads, heads.size());
  s += "<h3>Attention scores per layer</h3>\n<p>Raw Q·Kᵀ (before the 1/√d scaling) over the visible entries.</p>\n"
       "<table><tr><th>layer</th><th>min</th><th>max</th><th>mean</th><th>std</th><th>kurtosis</th></tr>\n";
  for (const auto& sc : a["attention"]["scores"])
    s += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n", sc["layer"].get<int>(),
                     num(sc["min"]), num(sc["max"]), num(sc["mean"]), num(sc["std"]), num(sc["kurtosis"]));
  return s + "</table>\n";
}

}  // namespace

std::string inline_svg(const std::string& svg) {
  std::string s = svg;
  const std::string ns = " xmlns=\"http://www.w3.org/2000/svg\"";
  if (const size_t at = s.find(ns); at != std::string::npos) s.erase(at, ns.size());
  return s;
}

std::string html_report(const json::json& a, const std::vector<Plot>& plots) {
  std::string s = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  s += fmt::format("<title>tquant analyze: {}</title>\n<style>{}</style>\n</head>\n<body>\n",
                   escape(a["model"]["path"].get<std::string>()), kStyle);
  s += fmt::format("<h1>Outlier analysis of <code>{}</code></h1>\n<p class=\"muted\">tquant analyze; the numbers are "
                   "in analysis.json beside this file, with their definitions.</p>\n",
                   escape(a["model"]["path"].get<std::string>()));
  s += summary(a);
  s += figures(plots);
  s += point_table(a);
  s += carrier_table(a);
  s += attention_tables(a);
  return s + "</body>\n</html>\n";
}

}  // namespace tquant::analysis
