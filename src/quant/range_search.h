#pragma once
// Searching a clipping range that minimises a loss (MSE or cross-entropy) — the candidate grids
// and golden-section search of the PEG reference code (Qualcomm-AI-research/transformer-
// quantization, MSE_Estimator), with one deliberate difference noted below.
//
// The data decide the shape of a candidate range (M is the search extent):
//   symmetric quantizer:          [-r, r],   M = max |x|
//   asymmetric, data >= 0:        [0, r],    M = max x     (one-sided, e.g. after softmax/GELU)
//   asymmetric, data <= 0:        [-r, 0],   M = -min x    (the mirror case, for symmetry)
//   asymmetric, two-sided:        [-r + t, r + t] clipped to [min x, max x], M = max |x|,
//                                 t = k·σ, |k| < S, Δ = 2r / (2^b - 1) the step of [-r, r],
//                                 b <= 8: S = 2^b / 4, σ = Δ; b > 8: S = 64, σ = Δ·2^(b-8)
// The grid takes r = M·i/G for i = 1..G (METHODS.md: "100 candidate ranges over [0, max|x|]"), so
// the last candidate is plain min-max and a search never does worse than it on its own data. The
// reference code widens the grid by an absolute margin of 0.5, which depends on the data's units
// (it is 10x a typical weight); we follow METHODS.md. S = 2^b/4 is the reference's shift range;
// coarser steps keep b > 8 from exploding (2^14 shifts per range at 16 bits) — at b <= 8 it is
// exactly the reference. Either way the shifts span about ±r/2.
#include <cstdint>
#include <functional>
#include <vector>

#include "quant/affine.h"

namespace tquant {

struct SearchDomain {
  float data_min = 0.f, data_max = 0.f;  // exact range of all observed data
  int bits = 8;
  bool symmetric = false;
};

bool is_two_sided(const SearchDomain& d);      // asymmetric with data on both sides of 0
float search_extent(const SearchDomain& d);    // M
int max_shift_steps(int bits);                 // S
float shift_step(float r, int bits);           // σ
// The candidate range for extent r and a shift of `shift` (in data units, two-sided only).
Range candidate_range(const SearchDomain& d, float r, float shift = 0.f);

// The grid, in tie-break order (the first minimum wins): for i = 1..G, then k = 0, 1, -1, 2, -2,
// ... (two-sided only). all-zero data gives the single candidate [0, 0].
std::vector<Range> grid_candidates(const SearchDomain& d, int grid_points);
// Only the unshifted ranges (i = 1..G), and only the shifts around one extent r.
std::vector<Range> extent_candidates(const SearchDomain& d, int grid_points);
std::vector<Range> shift_candidates(const SearchDomain& d, float r);

using RangeLoss = std::function<double(const Range&)>;

struct SearchResult {
  Range range;
  double loss = 0.0;
};

// Evaluates every candidate (in parallel: each loss is computed by one thread, and the minimum is
// then taken in candidate order, so the result does not depend on the thread count).
SearchResult argmin_range(const std::vector<Range>& candidates, const RangeLoss& loss);
// The full 2-D grid (MSE).
SearchResult grid_search(const SearchDomain& d, int grid_points, const RangeLoss& loss);
// Extent grid first, then the shift grid at the best extent (cross-entropy, whose loss costs an
// exp per value: 100 + 2S - 1 evaluations instead of 100 (2S - 1)).
SearchResult separable_grid_search(const SearchDomain& d, int grid_points, const RangeLoss& loss);

// Golden-section minimisation of f on [a, b] until the bracket is narrower than `tol`; returns
// the best point evaluated (ties: the earliest) and its value.
struct ScalarMin {
  double x = 0.0, f = 0.0;
};
ScalarMin golden_section(const std::function<double(double)>& f, double a, double b, double tol);

// MSE golden-section: r in [0.01 M, M]; two-sided asymmetric data nest a shift search in
// [-S·Δ, S·Δ] for every r, then the final shift is searched again at the best r (as the
// reference does). Brackets shrink to 1e-4 of their width (~20 evaluations per level).
SearchResult golden_search(const SearchDomain& d, const RangeLoss& loss);

}  // namespace tquant
