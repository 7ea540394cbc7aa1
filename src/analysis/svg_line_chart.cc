// Line chart over a categorical x axis (layers, points in forward order), legend on the right.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "analysis/svg_charts.h"
#include "analysis/svg_common.h"
#include "core/error.h"

namespace tquant::analysis::svg {

std::string line_chart(const LineChart& c) {
  const size_t n = c.x_labels.size();
  if (n == 0) fail("line chart \"{}\": no categories on the x axis", c.title);
  // On a log axis everything is placed by log10 of the value; non-positive values are gaps.
  auto tr = [&](double v) { return c.log_y ? (v > 0 ? std::log10(v) : NAN) : v; };
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& s : c.series) {
    if (s.y.size() != n) fail("line chart \"{}\": series \"{}\" has {} values for {} categories", c.title, s.name, s.y.size(), n);
    for (double v : s.y)
      if (std::isfinite(tr(v))) lo = std::min(lo, tr(v)), hi = std::max(hi, tr(v));
  }
  for (const auto& r : c.ref_lines)
    if (std::isfinite(tr(r.value))) lo = std::min(lo, tr(r.value)), hi = std::max(hi, tr(r.value));
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  Ticks yt;
  if (c.log_y) {
    // Whole decades, at least one apart.
    yt.lo = std::floor(lo);
    yt.hi = std::max(std::ceil(hi), yt.lo + 1);
    for (double d = yt.lo; d <= yt.hi + 1e-9; d += 1) yt.values.push_back(d);
  } else {
    yt = nice_ticks(std::min(lo, 0.0), hi, 7);
  }
  auto tick_label = [&](double v) { return c.log_y ? format_number(std::pow(10.0, v)) : format_number(v); };

  const double legend_w = 230;
  const double left = 72, right = 16 + legend_w, top = 44, bottom = 64;
  const double pw = c.width - left - right, ph = c.height - top - bottom;
  auto X = [&](size_t i) { return left + (i + 0.5) * pw / n; };
  auto Y = [&](double v) { return top + (yt.hi - v) / (yt.hi - yt.lo) * ph; };

  std::string s = open_svg(c.width, c.height, c.title);
  s += text(left + pw / 2, 24, c.title, 15, "middle", 0, "font-weight=\"bold\"");
  for (double v : yt.values) {
    s += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"#e6e6e6\"/>\n", left, Y(v),
                     left + pw, Y(v));
    s += text(left - 6, Y(v) + 4, tick_label(v), 11, "end");
  }
  for (const auto& r : c.ref_lines) {
    if (!std::isfinite(tr(r.value))) continue;
    s += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"#888\" stroke-dasharray=\"3 3\"/>\n",
                     left, Y(tr(r.value)), left + pw, Y(tr(r.value)));
    s += text(left + 4, Y(tr(r.value)) - 4, r.label, 11, "start", 0, "fill=\"#666\"");
  }
  // Category labels: every one when they fit, else every k-th.
  const size_t every = std::max<size_t>(1, static_cast<size_t>(std::ceil(n * 40.0 / pw)));
  for (size_t i = 0; i < n; i += every) {
    s += fmt::format("<line x1=\"{0:.2f}\" y1=\"{1:.2f}\" x2=\"{0:.2f}\" y2=\"{2:.2f}\" stroke=\"#333\"/>\n", X(i),
                     top + ph, top + ph + 5);
    s += text(X(i), top + ph + 18, shorten(c.x_labels[i], 12), 11);
  }
  for (size_t k = 0; k < c.series.size(); ++k) {
    const auto& se = c.series[k];
    const char* color = series_color(static_cast<int>(k));
    const std::string dash = se.dashed ? " stroke-dasharray=\"6 4\"" : "";
    // One polyline per run of finite values, so that a missing value leaves a gap.
    std::string points;
    auto flush = [&] {
      if (!points.empty())
        s += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>\n", points, color, dash);
      points.clear();
    };
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(tr(se.y[i]))) {
        flush();
        continue;
      }
      points += fmt::format("{}{:.2f},{:.2f}", points.empty() ? "" : " ", X(i), Y(tr(se.y[i])));
    }
    flush();
    for (size_t i = 0; i < n; ++i)
      if (std::isfinite(tr(se.y[i])))
        s += fmt::format("<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"3\" fill=\"{}\"><title>{}: {}</title></circle>\n", X(i),
                         Y(tr(se.y[i])), color, escape(se.name + " @ " + c.x_labels[i]), format_number(se.y[i]));
    // Legend entry.
    const double ly = top + 10 + 20 * k, lx = left + pw + 16;
    s += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"{}\" stroke-width=\"2\"{}/>\n", lx,
                     ly, lx + 24, ly, color, dash);
    s += text(lx + 30, ly + 4, shorten(se.name, 30), 11, "start");
  }
  s += fmt::format("<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" fill=\"none\" stroke=\"#333\"/>\n",
                   left, top, pw, ph);
  s += text(left + pw / 2, c.height - 14, c.x_label, 12);
  s += text(18, top + ph / 2, c.y_label, 12, "middle", -90);
  return s + close_svg();
}

}  // namespace tquant::analysis::svg
