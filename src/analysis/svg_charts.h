#pragma once
// Small SVG chart writers for the analysis report: per-channel range bars, line charts over a
// categorical axis, and heatmaps. Each returns a complete standalone <svg> document with a
// title, axes, ticks and axis labels; every piece of caller text is XML-escaped.
#include <string>
#include <vector>

namespace tquant::analysis::svg {

// A horizontal reference line, e.g. an outlier threshold.
struct RefLine {
  double value = 0;
  std::string label;
};

// One vertical bar per x position spanning [low[i], high[i]] (low empty: bars start at 0).
// Bars listed in `highlight` are drawn in a contrasting colour with their label on top.
struct RangeBarChart {
  std::string title, x_label, y_label;
  std::vector<double> low, high;
  struct Highlight {
    int index = 0;
    std::string label;
  };
  std::vector<Highlight> highlight;
  std::vector<RefLine> ref_lines;
  double width = 960, height = 380;
};
std::string range_bar_chart(const RangeBarChart& chart);

// Lines over categories x_labels[0..n); NaN values leave a gap.
struct LineChart {
  std::string title, x_label, y_label;
  std::vector<std::string> x_labels;
  struct Series {
    std::string name;
    std::vector<double> y;
    bool dashed = false;
  };
  std::vector<Series> series;
  std::vector<RefLine> ref_lines;
  // Logarithmic y axis (decades), for quantities spanning orders of magnitude; values <= 0
  // cannot be drawn on it and leave gaps like NaN.
  bool log_y = false;
  double width = 960, height = 380;
};
std::string line_chart(const LineChart& chart);

// rows x cols cells coloured by value (viridis over [vmin, vmax]) with a colour bar.
// Row/column labels are drawn when given (one per row/column); `annotate` prints each value
// in its cell when the cells are large enough to hold it.
struct Heatmap {
  std::string title, x_label, y_label, value_label;
  int rows = 0, cols = 0;
  std::vector<double> values;  // row-major rows x cols; NaN draws a grey cell
  std::vector<std::string> row_labels, col_labels;
  double vmin = 0, vmax = 1;
  bool annotate = false;
  double cell = 0;  // cell size in px; 0 picks one from the matrix size
};
std::string heatmap(const Heatmap& chart);

}  // namespace tquant::analysis::svg
