#pragma once
// `tquant analyze` without the files: cut the windows, run the FP forward pass twice with the
// observing hooks (activation_stats.h explains why two), and collect what they found.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "analysis/activation_stats.h"
#include "analysis/attention_stats.h"
#include "analysis/token_kinds.h"
#include "analysis/windows.h"
#include "model/model.h"

namespace tquant::analysis {

struct AnalysisOptions {
  int samples = 16;
  int seq_len = 128;                    // special tokens included; capped at the model's positions
  std::optional<uint64_t> seed;         // none: evenly spaced windows
  std::vector<std::string> point_globs; // empty: every [B, T, C] / [B, C] point
  int batch = 8;                        // windows per forward pass
  int heatmap_tokens = 40;              // positions kept for the attention heatmaps
  std::function<void(int pass, size_t done, size_t total)> progress;
};

struct AnalysisResult {
  int seq_len = 0;                 // after the cap
  bool seq_len_capped = false;
  int64_t data_tokens = 0;         // tokens in the whole data file
  int64_t window_text_tokens = 0;  // data tokens per window (seq_len minus the special tokens)
  std::vector<int64_t> starts;     // each window's first data token
  SpecialTemplate special_template;
  int64_t tokens = 0;              // positions analysed, special tokens included

  std::vector<PointStats> points;
  std::vector<HeadStats> heads;
  std::vector<ScoreStats> scores;
  std::vector<CapturedAttention> attention_maps;  // the most and the least "no-op" head
};

// True when `name` matches one of the shell-style globs (`*`, `?`, `[...]`); an empty list
// matches everything.
bool point_selected(const std::vector<std::string>& globs, const std::string& name);

AnalysisResult analyze(const Model& model, const TokenCatalog& catalog, const SpecialTemplate& special,
                       const std::vector<int32_t>& data_tokens, const AnalysisOptions& options);

}  // namespace tquant::analysis
