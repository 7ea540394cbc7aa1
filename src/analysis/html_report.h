#pragma once
// report.html: one self-contained page (inline CSS and inline SVG; no script, font or image is
// fetched) with a summary first (model, data, tokens, outlier dims per point, the most "no-op"
// heads), then the plots, then the full tables. Drawn from analysis.json and make_plots().
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/plots.h"

namespace tquant::analysis {

std::string html_report(const nlohmann::json& analysis, const std::vector<Plot>& plots);

// An SVG document as it goes inline into HTML: the XML namespace declaration is dropped, since
// HTML5 puts <svg> in that namespace anyway, so the page names no URL at all.
std::string inline_svg(const std::string& svg);

}  // namespace tquant::analysis
