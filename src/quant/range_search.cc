#include "quant/range_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace tquant {

bool is_two_sided(const SearchDomain& d) {
  return !d.symmetric && d.data_min < 0.f && d.data_max > 0.f;
}

float search_extent(const SearchDomain& d) {
  if (d.symmetric || is_two_sided(d)) return std::max(std::fabs(d.data_min), std::fabs(d.data_max));
  return d.data_min >= 0.f ? d.data_max : -d.data_min;
}

int max_shift_steps(int bits) { return std::min(1 << bits, 256) / 4; }

float shift_step(float r, int bits) {
  const float delta = 2.f * r / static_cast<float>((1 << bits) - 1);
  return bits <= 8 ? delta : delta * static_cast<float>(1 << (bits - 8));
}

Range candidate_range(const SearchDomain& d, float r, float shift) {
  if (d.symmetric) return {-r, r};
  if (!is_two_sided(d)) return d.data_min >= 0.f ? Range{0.f, r} : Range{-r, 0.f};
  // Clipping to the data keeps a shifted range from spending levels where there is no data.
  return {std::max(-r + shift, d.data_min), std::min(r + shift, d.data_max)};
}

namespace {
float extent_at(float m, int i, int grid_points) {
  return static_cast<float>(static_cast<double>(m) * i / grid_points);
}
void check_grid(int grid_points) {
  if (grid_points < 1) fail("range search: grid of {} points; need at least 1", grid_points);
}
}  // namespace

std::vector<Range> shift_candidates(const SearchDomain& d, float r) {
  if (!is_two_sided(d)) return {candidate_range(d, r)};
  std::vector<Range> out;
  const float delta = shift_step(r, d.bits);
  for (int k = 0; k < max_shift_steps(d.bits); ++k) {
    out.push_back(candidate_range(d, r, static_cast<float>(k) * delta));
    if (k > 0) out.push_back(candidate_range(d, r, -static_cast<float>(k) * delta));
  }
  return out;
}

std::vector<Range> extent_candidates(const SearchDomain& d, int grid_points) {
  check_grid(grid_points);
  const float m = search_extent(d);
  if (m == 0.f) return {Range{0.f, 0.f}};
  std::vector<Range> out;
  for (int i = 1; i <= grid_points; ++i) out.push_back(candidate_range(d, extent_at(m, i, grid_points)));
  return out;
}

std::vector<Range> grid_candidates(const SearchDomain& d, int grid_points) {
  check_grid(grid_points);
  const float m = search_extent(d);
  if (m == 0.f) return {Range{0.f, 0.f}};
  std::vector<Range> out;
  for (int i = 1; i <= grid_points; ++i) {
    const std::vector<Range> s = shift_candidates(d, extent_at(m, i, grid_points));
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

namespace {
// Index of the first minimum; every loss is computed by one thread, the minimum taken in order.
int64_t argmin_index(const std::vector<Range>& candidates, const RangeLoss& loss, double* best_loss) {
  if (candidates.empty()) fail("range search: no candidates");
  std::vector<double> l(candidates.size());
  const int64_t n = static_cast<int64_t>(candidates.size());
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
  for (int64_t i = 0; i < n; ++i) l[i] = loss(candidates[i]);
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (l[i] < l[best]) best = i;
  *best_loss = l[best];
  return best;
}
}  // namespace

SearchResult argmin_range(const std::vector<Range>& candidates, const RangeLoss& loss) {
  double l;
  const int64_t i = argmin_index(candidates, loss, &l);
  return {candidates[i], l};
}

SearchResult grid_search(const SearchDomain& d, int grid_points, const RangeLoss& loss) {
  return argmin_range(grid_candidates(d, grid_points), loss);
}

SearchResult separable_grid_search(const SearchDomain& d, int grid_points, const RangeLoss& loss) {
  const std::vector<Range> extents = extent_candidates(d, grid_points);
  double extent_loss;
  const int64_t i = argmin_index(extents, loss, &extent_loss);
  if (!is_two_sided(d)) return {extents[i], extent_loss};
  const float r = extent_at(search_extent(d), static_cast<int>(i) + 1, grid_points);
  const SearchResult by_shift = argmin_range(shift_candidates(d, r), loss);
  // The shift list starts with the unshifted range itself, so this never does worse.
  return by_shift.loss < extent_loss ? by_shift : SearchResult{extents[i], extent_loss};
}

ScalarMin golden_section(const std::function<double(double)>& f, double a, double b, double tol) {
  if (!(a <= b)) fail("golden section: empty bracket [{}, {}]", a, b);
  const double inv_phi = (std::sqrt(5.0) - 1.0) / 2.0;
  double c = b - inv_phi * (b - a), d = a + inv_phi * (b - a);
  double fc = f(c), fd = f(d);
  ScalarMin best = fc <= fd ? ScalarMin{c, fc} : ScalarMin{d, fd};
  while (b - a > tol) {
    if (fc <= fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - inv_phi * (b - a);
      fc = f(c);
      if (fc < best.f) best = {c, fc};
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + inv_phi * (b - a);
      fd = f(d);
      if (fd < best.f) best = {d, fd};
    }
  }
  return best;
}

namespace {
constexpr double kGoldenRelTol = 1e-4;
constexpr double kGoldenLowFraction = 0.01;  // r >= 0.01 M, as the reference
}  // namespace

SearchResult golden_search(const SearchDomain& d, const RangeLoss& loss) {
  const float m = search_extent(d);
  if (m == 0.f) return {Range{0.f, 0.f}, loss(Range{0.f, 0.f})};
  const double lo = kGoldenLowFraction * m, hi = m;
  if (!is_two_sided(d)) {
    const ScalarMin best = golden_section(
        [&](double r) { return loss(candidate_range(d, static_cast<float>(r))); }, lo, hi,
        kGoldenRelTol * (hi - lo));
    return {candidate_range(d, static_cast<float>(best.x)), best.f};
  }
  const auto best_shift = [&](float r) {
    // The reference's continuous shift bracket: 2^b/4 steps of Δ, about ±r/2.
    const double delta = 2.0 * r / ((1 << d.bits) - 1);
    const double max_shift = delta * ((1 << d.bits) / 4);
    return golden_section(
        [&](double t) { return loss(candidate_range(d, r, static_cast<float>(t))); }, -max_shift,
        max_shift, kGoldenRelTol * 2 * max_shift);
  };
  const ScalarMin best_r = golden_section(
      [&](double r) { return best_shift(static_cast<float>(r)).f; }, lo, hi, kGoldenRelTol * (hi - lo));
  const float r = static_cast<float>(best_r.x);
  const ScalarMin t = best_shift(r);
  return {candidate_range(d, r, static_cast<float>(t.x)), t.f};
}

}  // namespace tquant
