#pragma once
// analysis.json: everything `tquant analyze` found, with the rules it used spelled out in a
// "definitions" object so the file can be read without this code. The plots and the HTML
// report are drawn from this document alone (plots.h, html_report.h).
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "analysis/analyze.h"
#include "analysis/token_kinds.h"
#include "model/config.h"

namespace tquant::analysis {

// Where the numbers came from: recorded verbatim in the document.
struct Provenance {
  std::string model_dir, data_path;
  int samples_requested = 0, seq_len_requested = 0;
  std::optional<uint64_t> seed;
  std::vector<std::string> point_globs;
};

nlohmann::json analysis_json(const AnalysisResult& result, const ModelConfig& config, const TokenCatalog& catalog,
                             const Provenance& provenance);

}  // namespace tquant::analysis
