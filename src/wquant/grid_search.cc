#include "wquant/grid_search.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "quant/affine_fast.h"
#include "wquant/serial_blas.h"

namespace tquant::wq {

namespace {

// Rows are independent in every search here; fixed tiles of rows (not a split by thread count)
// keep each tile's sgemm shapes, and so the results, independent of the thread count. 128 rows
// make the ΔW·H products big enough for the BLAS kernels while still giving 32 tiles at 4096 rows.
constexpr int64_t kRowTile = 128;
// Below this many elements a plain pass over W is not worth waking the thread team.
constexpr int64_t kParallelPass = 1 << 16;

struct Layout {
  int64_t rows, cols, groups, width;  // width: columns per group (cols when per row)
};

Layout layout_of(const Tensor& W, const WeightFormat& f, const char* where) {
  if (W.ndim() != 2) fail("{}: W has shape {}, expected [rows, cols]", where, shape_str(W.shape()));
  check_format(f, W.dim(1), where);
  const int64_t C = W.dim(1), G = f.groups_per_row(C);
  return {W.dim(0), C, G, G == 0 ? 0 : C / G};
}

WeightGrid empty_grid(const Layout& L, const WeightFormat& f) {
  WeightGrid g;
  g.format = f;
  g.rows = L.rows;
  g.cols = L.cols;
  g.scale.assign(static_cast<size_t>(L.rows * L.groups), 1.f);
  g.zero.assign(static_cast<size_t>(L.rows * L.groups), 0.f);
  return g;
}

// The min-max range [lo, hi] of every row-group, 0 forced inside, symmetric made symmetric and a
// zero range replaced by [-1, 1] (see the header).
void minmax_ranges(const Tensor& W, const WeightFormat& f, const Layout& L, const char* where,
                   std::vector<float>& lo, std::vector<float>& hi) {
  const size_t n = static_cast<size_t>(L.rows * L.groups);
  lo.assign(n, 0.f);
  hi.assign(n, 0.f);
  std::vector<char> bad(static_cast<size_t>(L.rows), 0);
  const float maxq = static_cast<float>(f.max_code());
  const float* w = W.data();
#pragma omp parallel for schedule(static) if (L.rows * L.cols >= kParallelPass)
  for (int64_t r = 0; r < L.rows; ++r)
    for (int64_t g = 0; g < L.groups; ++g) {
      const float* x = w + r * L.cols + g * L.width;
      float mn = 0.f, mx = 0.f;
      bool finite = true;
      for (int64_t j = 0; j < L.width; ++j) {
        mn = x[j] < mn ? x[j] : mn;
        mx = x[j] > mx ? x[j] : mx;
        finite &= std::isfinite(x[j]);
      }
      if (!finite) bad[r] = 1;
      if (f.symmetric) {
        mx = std::max(-mn, mx);
        mn = -mx;
      }
      if ((mn == 0.f && mx == 0.f) || !((mx - mn) / maxq > 0.f)) {
        mn = -1.f;
        mx = 1.f;
      }
      lo[r * L.groups + g] = mn;
      hi[r * L.groups + g] = mx;
    }
  for (int64_t r = 0; r < L.rows; ++r)
    if (bad[r]) fail("{}: row {} of W has a non-finite value", where, r);
}

// Candidate (scale, zero) for clip ratio p. `ceil_zero` picks the ceil rather than the floor of
// the real-valued zero point (asymmetric only). False when the scale underflows to 0, which only
// a range of ~1e-36 at a small ratio can do; such a candidate is skipped.
inline bool candidate(float lo, float hi, float p, bool ceil_zero, const WeightFormat& f, float maxq, float& s,
                      float& z) {
  const float hp = hi * p, lp = lo * p;
  s = (hp - lp) / maxq;
  if (!(s > 0.f) || !std::isfinite(s)) return false;
  if (f.fp16 && !std::isfinite(s = fp16_scale(s))) return false;
  if (f.symmetric) {
    z = static_cast<float>(1 << (f.bits - 1));
  } else {
    const float t = -lp / s;
    z = std::clamp(ceil_zero ? std::ceil(t) : std::floor(t), 0.f, maxq);
    if (f.fp16 && !fit_fp16_offset(s, z)) return false;
  }
  return true;
}

// Σ_j d_j (w_hat_j - w_j)² over 16 fixed accumulators: vectorisable, and the same summation
// order on every run and thread count.
double weighted_sq_error(const float* w, const float* d, int64_t n, float s, float z, float maxq) {
  constexpr int kLanes = 16;
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const float e = s * (quantize_code_fast(w[j + l], s, z, 0.f, maxq) - z) - w[j + l];
      acc[l] += d[j + l] * e * e;
    }
  for (int l = 0; j + l < n; ++l) {
    const float e = s * (quantize_code_fast(w[j + l], s, z, 0.f, maxq) - z) - w[j + l];
    acc[l] += d[j + l] * e * e;
  }
  double total = 0;
  for (float a : acc) total += a;
  return total;
}

// Σ_j a_j b_j over 16 fixed accumulators, for the same reasons as weighted_sq_error.
double dot(const float* a, const float* b, int64_t n) {
  constexpr int kLanes = 16;
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += a[j + l] * b[j + l];
  for (int l = 0; j + l < n; ++l) acc[l] += a[j + l] * b[j + l];
  double total = 0;
  for (float v : acc) total += v;
  return total;
}

// The search of search_grid / mse_grid. Exactly one of H (the exact quadratic form of each
// group's diagonal block) and diag (the weights of the diagonal score) is non-null.
WeightGrid search_impl(const Tensor& W, const float* H, const float* diag, const WeightFormat& f,
                       const GridSearchOptions& o, const char* where) {
  const Layout L = layout_of(W, f, where);
  const std::vector<float> ratios = clip_ratios(o);
  std::vector<float> lo, hi;
  minmax_ranges(W, f, L, where, lo, hi);
  WeightGrid grid = minmax_grid(W, f);  // every row-group's ratio-1 candidate is valid, so all get replaced
  const float maxq = static_cast<float>(f.max_code());
  const int zero_variants = f.symmetric ? 1 : 2;
  const int64_t tiles = (L.rows + kRowTile - 1) / kRowTile;
  const float* w = W.data();

#pragma omp parallel for schedule(dynamic, 1) if (tiles > 1)
  for (int64_t t = 0; t < tiles; ++t) {
    SerialBlas serial;  // each tile's sgemm on one thread, whether or not the team is active
    const int64_t r0 = t * kRowTile, m = std::min(kRowTile, L.rows - r0), C = L.cols, b = L.width;
    std::vector<double> best(static_cast<size_t>(m * L.groups), std::numeric_limits<double>::infinity());
    auto keep = [&](int64_t r, int64_t g, double score, float s, float z) {
      double& bst = best[(r - r0) * L.groups + g];
      if (!(score < bst)) return;  // ties keep the earlier (larger-ratio, floor) candidate
      bst = score;
      grid.scale[r * L.groups + g] = s;
      grid.zero[r * L.groups + g] = z;
    };

    if (H == nullptr) {
      // Diagonal score: each row-group on its own, its values staying in L1 across candidates.
      for (int64_t r = r0; r < r0 + m; ++r)
        for (int64_t g = 0; g < L.groups; ++g) {
          const float* x = w + r * C + g * b;
          const float l = lo[r * L.groups + g], h = hi[r * L.groups + g];
          for (float p : ratios) {
            float s, z, z_prev = -1.f;
            for (int v = 0; v < zero_variants; ++v) {
              if (!candidate(l, h, p, v == 1, f, maxq, s, z) || z == z_prev) continue;
              z_prev = z;
              keep(r, g, weighted_sq_error(x, diag + g * b, b, s, z, maxq), s, z);
            }
          }
        }
      continue;
    }

    // Exact score: candidate c of every row-group in the tile at once, ΔW [m, C] times the
    // block-diagonal of H by one sgemm per group, then the row-group dot products.
    std::vector<float> dW(static_cast<size_t>(m * C)), S(static_cast<size_t>(m * C));
    std::vector<float> cs(static_cast<size_t>(m * L.groups)), cz(cs.size());
    std::vector<char> ok(cs.size());
    for (float p : ratios)
      for (int v = 0; v < zero_variants; ++v) {
        for (int64_t i = 0; i < m; ++i)
          for (int64_t g = 0; g < L.groups; ++g) {
            const int64_t k = i * L.groups + g, rk = (r0 + i) * L.groups + g;
            float s = 1.f, z = 0.f;
            ok[k] = candidate(lo[rk], hi[rk], p, v == 1, f, maxq, s, z);
            cs[k] = s;
            cz[k] = z;
            const float* x = w + (r0 + i) * C + g * b;
            float* d = dW.data() + i * C + g * b;
            if (!ok[k]) {
              std::fill(d, d + b, 0.f);
              continue;
            }
            for (int64_t j = 0; j < b; ++j) d[j] = s * (quantize_code_fast(x[j], s, z, 0.f, maxq) - z) - x[j];
          }
        for (int64_t g = 0; g < L.groups; ++g)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, b, b, 1.f, dW.data() + g * b, C,
                      H + g * b * C + g * b, C, 0.f, S.data() + g * b, C);
        for (int64_t i = 0; i < m; ++i)
          for (int64_t g = 0; g < L.groups; ++g) {
            const int64_t k = i * L.groups + g;
            if (!ok[k]) continue;
            keep(r0 + i, g, dot(S.data() + i * C + g * b, dW.data() + i * C + g * b, b), cs[k], cz[k]);
          }
      }
  }
  return grid;
}

}  // namespace

std::vector<float> clip_ratios(const GridSearchOptions& o) {
  if (!(o.step > 0.f) || !std::isfinite(o.step)) fail("grid search: ratio step {} is not > 0", o.step);
  if (!(o.min_ratio > 0.f && o.min_ratio <= 1.f))
    fail("grid search: minimum clip ratio {} is outside (0, 1]", o.min_ratio);
  std::vector<float> r;
  // The tolerance keeps the last ratio when (1 - min_ratio) / step is an integer up to rounding.
  for (int64_t k = 0;; ++k) {
    const double p = 1.0 - static_cast<double>(k) * o.step;
    if (p < o.min_ratio - 1e-6 * o.step) break;
    r.push_back(static_cast<float>(p));
  }
  return r;
}

WeightGrid minmax_grid(const Tensor& W, const WeightFormat& f) {
  const Layout L = layout_of(W, f, "minmax_grid");
  std::vector<float> lo, hi;
  minmax_ranges(W, f, L, "minmax_grid", lo, hi);
  WeightGrid g = empty_grid(L, f);
  const float maxq = static_cast<float>(f.max_code());
  for (size_t k = 0; k < lo.size(); ++k) {
    g.scale[k] = (hi[k] - lo[k]) / maxq;
    if (f.fp16) g.scale[k] = fp16_scale(g.scale[k]);
    g.zero[k] = f.symmetric ? static_cast<float>(1 << (f.bits - 1))
                            : std::clamp(std::nearbyint(-lo[k] / g.scale[k]), 0.f, maxq);
    if (f.fp16 && (!std::isfinite(g.scale[k]) || (!f.symmetric && !fit_fp16_offset(g.scale[k], g.zero[k]))))
      fail("minmax_grid: row {}, group {} spans [{}, {}], which no fp16 grid covers (weights beyond fp16's range)",
           static_cast<int64_t>(k) / L.groups, static_cast<int64_t>(k) % L.groups, lo[k], hi[k]);
  }
  return g;
}

WeightGrid search_grid(const Tensor& W, const Tensor& H, const WeightFormat& f, const GridSearchOptions& o) {
  const Layout L = layout_of(W, f, "search_grid");
  if (H.ndim() != 2 || H.dim(0) != L.cols || H.dim(1) != L.cols)
    fail("search_grid: H has shape {}, expected [{}, {}]", shape_str(H.shape()), L.cols, L.cols);
  if (L.width <= o.full_h_max_width) return search_impl(W, H.data(), nullptr, f, o, "search_grid");
  std::vector<float> diag(static_cast<size_t>(L.cols));
  for (int64_t j = 0; j < L.cols; ++j) diag[j] = H[j * L.cols + j];
  return search_impl(W, nullptr, diag.data(), f, o, "search_grid");
}

WeightGrid mse_grid(const Tensor& W, const WeightFormat& f, const GridSearchOptions& o) {
  const Layout L = layout_of(W, f, "mse_grid");
  const std::vector<float> ones(static_cast<size_t>(L.cols), 1.f);
  return search_impl(W, nullptr, ones.data(), f, o, "mse_grid");
}

void check_grid(const WeightGrid& g, const Tensor& W, const char* where) {
  if (W.ndim() != 2 || W.dim(0) != g.rows || W.dim(1) != g.cols)
    fail("{}: W has shape {} but the grid is for [{}, {}]", where, shape_str(W.shape()), g.rows, g.cols);
  check_format(g.format, g.cols, where);
  const size_t n = static_cast<size_t>(g.rows * g.format.groups_per_row(g.cols));
  if (g.scale.size() != n || g.zero.size() != n)
    fail("{}: the grid has {} scales and {} zeros, expected {}", where, g.scale.size(), g.zero.size(), n);
  const float maxq = static_cast<float>(g.format.max_code());
  for (size_t k = 0; k < n; ++k) {
    if (!(g.scale[k] > 0.f) || !std::isfinite(g.scale[k]))
      fail("{}: grid scale {} = {} is not finite and > 0", where, k, g.scale[k]);
    if (!(g.zero[k] >= 0.f && g.zero[k] <= maxq) || g.zero[k] != std::nearbyint(g.zero[k]))
      fail("{}: grid zero {} = {} is not an integer in [0, {}]", where, k, g.zero[k], g.format.max_code());
    if (!is_fp16_grid_point(g.format, g.scale[k], g.zero[k]))
      fail("{}: the fp16 grid's scale {} = {} (zero {}) or its offset is not an fp16 value", where, k, g.scale[k],
           g.zero[k]);
  }
}

QuantizedWeight round_to_grid(const Tensor& W, const WeightGrid& g) {
  check_grid(g, W, "round_to_grid");
  QuantizedWeight q;
  q.grid = g;
  const int64_t R = g.rows, C = g.cols;
  q.codes.resize(static_cast<size_t>(R * C));
  const float maxq = static_cast<float>(g.format.max_code());
  const int64_t width = g.format.group == 0 ? C : g.format.group;
  const float* w = W.data();
  uint8_t* codes = q.codes.data();
#pragma omp parallel for schedule(static) if (R * C >= kParallelPass)
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c0 = 0; c0 < C; c0 += width) {
      const int64_t k = g.index(r, c0);
      const float s = g.scale[k], z = g.zero[k];
      for (int64_t c = c0; c < c0 + width; ++c)
        codes[r * C + c] = static_cast<uint8_t>(quantize_code_fast(w[r * C + c], s, z, 0.f, maxq));
    }
  return q;
}

}  // namespace tquant::wq
