#include "analysis/svg_common.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "tokenize/unicode.h"

namespace tquant::analysis::svg {

std::string escape(std::string_view raw) {
  const std::string text = unicode::utf8_lossy(raw);
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
          out += "\xEF\xBF\xBD";
        else
          out += ch;
    }
  }
  return out;
}

namespace {

// Heckbert's nice number: 1, 2, 5 or 10 times a power of ten, nearest to x. The tick step is
// the nice number of range / (target - 1); Heckbert's extra rounding of the range itself is
// left out, as it can double the step and leave too few ticks.
double nice_number(double x) {
  const double exp = std::floor(std::log10(x));
  const double f = x / std::pow(10.0, exp);
  const double nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  return nf * std::pow(10.0, exp);
}

}  // namespace

Ticks nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (lo > hi) std::swap(lo, hi);
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
    // A constant: give it a visible band around the value.
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.5;
    lo -= pad;
    hi += pad;
  }
  const double step = nice_number((hi - lo) / std::max(1, target - 1));
  Ticks t;
  t.lo = std::floor(lo / step) * step;
  t.hi = std::ceil(hi / step) * step;
  for (int i = 0;; ++i) {
    const double v = t.lo + i * step;
    if (v > t.hi + step * 1e-6) break;
    t.values.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  }
  return t;
}

std::string format_number(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "n/a" : (v > 0 ? "∞" : "-∞");
  if (v == 0) return "0";
  return fmt::format("{:.4g}", v);
}

const char* series_color(int i) {
  static constexpr std::array<const char*, 10> kTableau10 = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2",
                                                            "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                                                            "#9c755f", "#bab0ac"};
  return kTableau10[static_cast<size_t>(i) % kTableau10.size()];
}

namespace {
// Viridis sampled at 9 evenly spaced points; linear interpolation between them is
// indistinguishable from the full 256-entry table at heatmap cell sizes.
constexpr std::array<std::array<double, 3>, 9> kViridis = {{{68, 1, 84},
                                                           {71, 44, 122},
                                                           {59, 81, 139},
                                                           {44, 113, 142},
                                                           {33, 144, 141},
                                                           {39, 173, 129},
                                                           {92, 200, 99},
                                                           {170, 220, 50},
                                                           {253, 231, 37}}};
}  // namespace

std::string viridis(double t) {
  if (!std::isfinite(t)) return "#cccccc";
  t = std::clamp(t, 0.0, 1.0) * (kViridis.size() - 1);
  const size_t i = std::min(static_cast<size_t>(t), kViridis.size() - 2);
  const double f = t - i;
  int rgb[3];
  for (int k = 0; k < 3; ++k) rgb[k] = static_cast<int>(std::lround(kViridis[i][k] * (1 - f) + kViridis[i + 1][k] * f));
  return fmt::format("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]);
}

const char* text_color_on_viridis(double t) { return t > 0.6 ? "#000000" : "#ffffff"; }

std::string open_svg(double width, double height, std::string_view title) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"Helvetica, Arial, sans-serif\" role=\"img\">\n<title>{2}</title>\n"
      "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"#ffffff\"/>\n",
      width, height, escape(title));
}

std::string close_svg() { return "</svg>\n"; }

std::string text(double x, double y, std::string_view s, double size, std::string_view anchor, double rotate,
                 std::string_view extra_style) {
  std::string transform = rotate != 0 ? fmt::format(" transform=\"rotate({:.4g} {:.2f} {:.2f})\"", rotate, x, y) : "";
  return fmt::format("<text x=\"{:.2f}\" y=\"{:.2f}\" font-size=\"{:.4g}\" text-anchor=\"{}\"{}{}>{}</text>\n", x, y,
                     size, anchor, transform, extra_style.empty() ? "" : fmt::format(" {}", extra_style), escape(s));
}

std::string shorten(std::string_view s, size_t max_chars) {
  size_t i = 0, chars = 0;
  while (i < s.size() && chars < max_chars) {
    i += unicode::utf8_length(static_cast<unsigned char>(s[i]));
    ++chars;
  }
  if (i >= s.size()) return std::string(s);
  // Cut one code point earlier to make room for the ellipsis.
  size_t j = 0, kept = 0;
  while (j < s.size() && kept + 1 < max_chars) {
    j += unicode::utf8_length(static_cast<unsigned char>(s[j]));
    ++kept;
  }
  return std::string(s.substr(0, j)) + "…";
}

}  // namespace tquant::analysis::svg
