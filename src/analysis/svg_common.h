#pragma once
// Shared pieces of the SVG chart writers (svg_charts.h): XML escaping, axis ticks at "nice"
// numbers, number labels, colours. Charts are plain SVG 1.1 text with inline styles only, so a
// report that embeds them needs no stylesheet, script or font from anywhere.
#include <string>
#include <string_view>
#include <vector>

namespace tquant::analysis::svg {

// Text safe inside an XML element or a double-quoted attribute: & < > " ' are escaped, invalid
// UTF-8 becomes U+FFFD and control characters (not allowed in XML 1.0) become U+FFFD too.
std::string escape(std::string_view text);

// Tick positions covering [lo, hi] at multiples of 1, 2 or 5 times a power of ten (Heckbert's
// "nice numbers"), about `target` of them; lo and hi are widened to the outer ticks.
struct Ticks {
  double lo = 0, hi = 1;
  std::vector<double> values;
};
Ticks nice_ticks(double lo, double hi, int target = 6);

// A short label for a tick or a value: up to 4 significant digits, no trailing zeros.
std::string format_number(double v);

// The i-th colour of a qualitative palette (Tableau 10), for series and highlights.
const char* series_color(int i);
// Perceptually uniform sequential colour (viridis) for t in [0, 1], as "#rrggbb".
std::string viridis(double t);
// Black or white, whichever reads better on top of viridis(t).
const char* text_color_on_viridis(double t);

// Opening <svg> element with the size and a white background, and the closing tag.
std::string open_svg(double width, double height, std::string_view title);
std::string close_svg();

// A text element; anchor is start, middle or end; rotate in degrees about (x, y).
std::string text(double x, double y, std::string_view s, double size, std::string_view anchor = "middle",
                 double rotate = 0, std::string_view extra_style = "");

// Shortens text to at most `max_chars` code points, ending in "…" when cut.
std::string shorten(std::string_view s, size_t max_chars);

}  // namespace tquant::analysis::svg
