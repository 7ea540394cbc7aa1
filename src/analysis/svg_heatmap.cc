// Heatmap with optional row/column labels and a colour bar (viridis).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "analysis/svg_charts.h"
#include "analysis/svg_common.h"
#include "core/error.h"

namespace tquant::analysis::svg {

std::string heatmap(const Heatmap& c) {
  if (c.rows <= 0 || c.cols <= 0) fail("heatmap \"{}\": {} x {} cells", c.title, c.rows, c.cols);
  if (c.values.size() != static_cast<size_t>(c.rows) * c.cols)
    fail("heatmap \"{}\": {} values for {} x {} cells", c.title, c.values.size(), c.rows, c.cols);
  if (!c.row_labels.empty() && c.row_labels.size() != static_cast<size_t>(c.rows))
    fail("heatmap \"{}\": {} row labels for {} rows", c.title, c.row_labels.size(), c.rows);
  if (!c.col_labels.empty() && c.col_labels.size() != static_cast<size_t>(c.cols))
    fail("heatmap \"{}\": {} column labels for {} columns", c.title, c.col_labels.size(), c.cols);

  // Cells as large as fit a ~640 px square, between 6 and 44 px.
  const double cell = c.cell > 0 ? c.cell : std::clamp(640.0 / std::max(c.rows, c.cols), 6.0, 44.0);
  size_t longest_row = 0, longest_col = 0;
  for (const auto& l : c.row_labels) longest_row = std::max(longest_row, std::min<size_t>(l.size(), 12));
  for (const auto& l : c.col_labels) longest_col = std::max(longest_col, std::min<size_t>(l.size(), 12));
  const double label_font = std::clamp(cell * 0.75, 8.0, 12.0);
  const double left = 48 + longest_row * label_font * 0.6, top = 62;
  // Column labels stand upright when they fit in a cell, else they are turned vertical.
  const bool upright = c.col_labels.empty() || longest_col * label_font * 0.62 <= cell;
  const double bottom = 44 + (upright ? 18 : longest_col * label_font * 0.6 + 8);
  const double pw = cell * c.cols, ph = cell * c.rows;
  const double bar_x = left + pw + 24, width = std::max({bar_x + 84, 40 + 7.5 * c.title.size(), bar_x + 6.2 * c.value_label.size() + 12}), height = top + ph + bottom;
  const double span = c.vmax > c.vmin ? c.vmax - c.vmin : 1;
  auto norm = [&](double v) { return (v - c.vmin) / span; };

  std::string s = open_svg(width, height, c.title);
  s += text(width / 2, 24, c.title, 15, "middle", 0, "font-weight=\"bold\"");
  const bool annotate = c.annotate && cell >= 26;
  for (int r = 0; r < c.rows; ++r)
    for (int k = 0; k < c.cols; ++k) {
      const double v = c.values[static_cast<size_t>(r) * c.cols + k];
      const double x = left + k * cell, y = top + r * cell;
      s += fmt::format("<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" fill=\"{}\""
                       " shape-rendering=\"crispEdges\"><title>{}, {}: {}</title></rect>\n",
                       x, y, cell, cell, std::isfinite(v) ? viridis(norm(v)) : "#cccccc",
                       escape(c.row_labels.empty() ? std::to_string(r) : c.row_labels[r]),
                       escape(c.col_labels.empty() ? std::to_string(k) : c.col_labels[k]), format_number(v));
      if (annotate && std::isfinite(v))
        s += text(x + cell / 2, y + cell / 2 + 4, fmt::format("{:.2f}", v), std::min(11.0, cell * 0.36), "middle", 0,
                  fmt::format("fill=\"{}\"", text_color_on_viridis(norm(v))));
    }
  s += fmt::format("<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" fill=\"none\" stroke=\"#333\"/>\n",
                   left, top, pw, ph);
  // Axis labels: each row and column when labelled, else index ticks every few cells.
  const int every = std::max(1, static_cast<int>(std::ceil(14.0 / cell)));
  for (int r = 0; r < c.rows; ++r) {
    if (c.row_labels.empty() && r % every) continue;
    s += text(left - 4, top + r * cell + cell / 2 + label_font * 0.35,
              c.row_labels.empty() ? std::to_string(r) : shorten(c.row_labels[r], 12), label_font, "end");
  }
  for (int k = 0; k < c.cols; ++k) {
    if (c.col_labels.empty() && k % every) continue;
    const double x = left + k * cell + cell / 2, y = top + ph + 6;
    if (upright)
      s += text(x, y + 10, c.col_labels.empty() ? std::to_string(k) : c.col_labels[k], label_font);
    else
      s += text(x + label_font * 0.35, y, shorten(c.col_labels[k], 12), label_font, "end", -90);
  }
  s += text(left + pw / 2, height - 10, c.x_label, 12);
  s += text(14, top + ph / 2, c.y_label, 12, "middle", -90);
  // Colour bar: 32 bands from vmin (bottom) to vmax (top), with ticks.
  const int bands = 32;
  for (int i = 0; i < bands; ++i) {
    const double t0 = static_cast<double>(i) / bands;
    s += fmt::format("<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"16\" height=\"{:.2f}\" fill=\"{}\"/>\n", bar_x,
                     top + ph - (t0 + 1.0 / bands) * ph, ph / bands + 0.5, viridis(t0 + 0.5 / bands));
  }
  s += fmt::format("<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"16\" height=\"{:.2f}\" fill=\"none\" stroke=\"#333\"/>\n", bar_x,
                   top, ph);
  const Ticks bt = nice_ticks(c.vmin, c.vmax, 5);
  for (double v : bt.values) {
    if (v < c.vmin - 1e-12 * span || v > c.vmax + 1e-12 * span) continue;
    const double y = top + ph - norm(v) * ph;
    s += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"#333\"/>\n", bar_x + 16, y,
                     bar_x + 20, y);
    s += text(bar_x + 22, y + 4, format_number(v), 10, "start");
  }
  s += text(bar_x, top - 10, c.value_label, 11, "start");
  return s + close_svg();
}

}  // namespace tquant::analysis::svg
