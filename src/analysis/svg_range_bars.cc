// Range bar chart: the per-channel min/max picture of Bondarenko et al.'s outlier figure.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "analysis/svg_charts.h"
#include "analysis/svg_common.h"
#include "core/error.h"

namespace tquant::analysis::svg {

std::string range_bar_chart(const RangeBarChart& c) {
  const size_t n = c.high.size();
  if (n == 0) fail("range bar chart \"{}\": no bars", c.title);
  if (!c.low.empty() && c.low.size() != n) fail("range bar chart \"{}\": {} lows for {} highs", c.title, c.low.size(), n);
  auto low = [&](size_t i) { return c.low.empty() ? 0.0 : c.low[i]; };

  double lo = 0, hi = 0;
  for (size_t i = 0; i < n; ++i) lo = std::min(lo, low(i)), hi = std::max(hi, c.high[i]);
  for (const auto& r : c.ref_lines) lo = std::min(lo, r.value), hi = std::max(hi, r.value);
  const Ticks yt = nice_ticks(lo, hi, 7);
  const Ticks xt = nice_ticks(0, static_cast<double>(n - 1), 10);

  const double left = 72, right = 24, top = 44, bottom = 58;
  const double pw = c.width - left - right, ph = c.height - top - bottom;
  auto X = [&](double i) { return left + (i + 0.5) * pw / n; };
  auto Y = [&](double v) { return top + (yt.hi - v) / (yt.hi - yt.lo) * ph; };

  std::string s = open_svg(c.width, c.height, c.title);
  s += text(c.width / 2, 24, c.title, 15, "middle", 0, "font-weight=\"bold\"");
  // Grid and y ticks.
  for (double v : yt.values) {
    s += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"#e6e6e6\"/>\n", left, Y(v),
                     left + pw, Y(v));
    s += text(left - 6, Y(v) + 4, format_number(v), 11, "end");
  }
  for (double v : xt.values) {
    if (v > n - 1 + 1e-9) continue;
    s += fmt::format("<line x1=\"{0:.2f}\" y1=\"{1:.2f}\" x2=\"{0:.2f}\" y2=\"{2:.2f}\" stroke=\"#333\"/>\n", X(v),
                     top + ph, top + ph + 5);
    s += text(X(v), top + ph + 18, format_number(v), 11);
  }
  // Bars: at least one pixel wide so that every channel of a wide tensor stays visible.
  const double bw = std::max(1.0, 0.8 * pw / n);
  std::vector<bool> marked(n, false);
  for (const auto& h : c.highlight)
    if (h.index >= 0 && static_cast<size_t>(h.index) < n) marked[h.index] = true;
  for (size_t i = 0; i < n; ++i) {
    const double y0 = Y(std::max(low(i), c.high[i])), y1 = Y(std::min(low(i), c.high[i]));
    s += fmt::format("<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" fill=\"{}\"/>\n", X(i) - bw / 2,
                     y0, bw, std::max(0.5, y1 - y0), marked[i] ? series_color(2) : series_color(0));
  }
  // Zero line and reference lines over the bars.
  if (yt.lo < 0 && yt.hi > 0)
    s += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"#333\" stroke-width=\"0.8\"/>\n",
                     left, Y(0), left + pw, Y(0));
  for (const auto& r : c.ref_lines) {
    s += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"{}\" stroke-dasharray=\"6 4\"/>\n",
                     left, Y(r.value), left + pw, Y(r.value), series_color(1));
    s += text(left + pw - 4, Y(r.value) - 4, r.label, 11, "end", 0, fmt::format("fill=\"{}\"", series_color(1)));
  }
  // Labels of the highlighted bars, beyond the end of the bar with the larger magnitude.
  for (const auto& h : c.highlight) {
    if (h.index < 0 || static_cast<size_t>(h.index) >= n) continue;
    const double l = low(h.index), u = c.high[h.index];
    const bool up = std::abs(u) >= std::abs(l);
    s += text(X(h.index), up ? Y(u) - 6 : Y(l) + 15, h.label, 11, "middle", 0,
              fmt::format("fill=\"{}\" font-weight=\"bold\"", series_color(2)));
  }
  // Axes and their labels.
  s += fmt::format("<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" fill=\"none\" stroke=\"#333\"/>\n",
                   left, top, pw, ph);
  s += text(left + pw / 2, c.height - 14, c.x_label, 12);
  s += text(18, top + ph / 2, c.y_label, 12, "middle", -90);
  return s + close_svg();
}

}  // namespace tquant::analysis::svg
