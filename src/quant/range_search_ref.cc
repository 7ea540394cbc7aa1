#include "quant/range_search_ref.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "quant/cross_entropy_loss.h"
#include "quant/sorted_sample.h"

namespace tquant {

namespace {

// The candidate for extent r and shift t, following the table in range_search.h.
Range make_range(float dmin, float dmax, bool symmetric, float r, float t) {
  if (symmetric) return {-r, r};
  if (dmin >= 0.f) return {0.f, r};
  if (dmax <= 0.f) return {-r, 0.f};
  return {std::max(-r + t, dmin), std::min(r + t, dmax)};
}

// Enumerates candidates in tie-break order; `visit` returns the loss. `shifts_at` = -1: the full
// 2-D grid; otherwise only extents first, then the shifts of the winning extent.
RefSearchResult search(float dmin, float dmax, int bits, bool symmetric, int grid_points, bool separable,
                       const std::function<double(Range)>& loss) {
  const bool two_sided = !symmetric && dmin < 0.f && dmax > 0.f;
  const float m = (symmetric || two_sided) ? std::max(std::fabs(dmin), std::fabs(dmax))
                                           : (dmin >= 0.f ? dmax : -dmin);
  if (m == 0.f) return {Range{0.f, 0.f}, loss(Range{0.f, 0.f})};
  const int steps = two_sided ? (bits <= 8 ? (1 << bits) / 4 : 64) : 1;
  RefSearchResult best{Range{}, std::numeric_limits<double>::infinity()};
  auto consider = [&](Range r) {
    const double l = loss(r);
    if (l < best.loss) best = {r, l};
  };
  auto shifts_of = [&](float r) {
    float step = 2.f * r / static_cast<float>((1 << bits) - 1);
    if (bits > 8) step *= static_cast<float>(1 << (bits - 8));
    for (int k = 0; k < steps; ++k) {
      consider(make_range(dmin, dmax, symmetric, r, static_cast<float>(k) * step));
      if (k > 0) consider(make_range(dmin, dmax, symmetric, r, -static_cast<float>(k) * step));
    }
  };
  float best_r = 0.f;
  for (int i = 1; i <= grid_points; ++i) {
    const float r = static_cast<float>(static_cast<double>(m) * i / grid_points);
    if (separable) {
      const double before = best.loss;
      consider(make_range(dmin, dmax, symmetric, r, 0.f));
      if (best.loss < before) best_r = r;
    } else {
      shifts_of(r);
    }
  }
  if (separable && two_sided) shifts_of(best_r);
  return best;
}

}  // namespace

RefSearchResult mse_grid_ref(const std::vector<float>& values, int bits, bool symmetric, int grid_points) {
  if (values.empty()) fail("mse_grid_ref: no values");
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  return search(*lo, *hi, bits, symmetric, grid_points, false, [&](Range r) {
    return sq_error_ref(values, scale_zero_from_range(r, bits, symmetric, "mse_grid_ref"), bits, symmetric);
  });
}

RefSearchResult cross_entropy_grid_ref(const std::vector<float>& rows, int64_t n_rows, int64_t cols,
                                       int bits, bool symmetric, int grid_points) {
  if (rows.empty()) fail("cross_entropy_grid_ref: no rows");
  const auto [lo, hi] = std::minmax_element(rows.begin(), rows.end());
  std::vector<int32_t> all(cols);
  std::iota(all.begin(), all.end(), 0);
  return search(*lo, *hi, bits, symmetric, grid_points, true, [&](Range r) {
    return cross_entropy_ref(rows.data(), n_rows, cols, all,
                             scale_zero_from_range(r, bits, symmetric, "cross_entropy_grid_ref"), bits,
                             symmetric);
  });
}

}  // namespace tquant
