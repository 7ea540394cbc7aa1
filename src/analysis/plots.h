#pragma once
// The report's figures, drawn from analysis.json (analysis_json.h) with the SVG writers:
//   - per-channel min/max of the last block's ffn.residual_sum (and of the point with the most
//     extreme outlier dim, when that is another one), outlier dims labelled: the picture of
//     Bondarenko et al.'s structured outliers;
//   - max |x| and kurtosis of the residual sums and norm outputs across layers;
//   - the attention map of the most and the least "no-op" head for the first window;
//   - layer x head heatmaps of the attention mass on special tokens and on delimiters.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tquant::analysis {

struct Plot {
  std::string file;     // e.g. "channel_ranges_layers.1.ffn.residual_sum.svg"
  std::string title;
  std::string caption;  // one sentence on how to read it
  std::string svg;
};

std::vector<Plot> make_plots(const nlohmann::json& analysis);

// How a token object of analysis.json ({"text", "token", ...}) is shown: its decoded text made
// visible (visible_text), or its vocabulary entry when it decodes to nothing (e.g. "▁").
std::string token_label(const nlohmann::json& token);

}  // namespace tquant::analysis
