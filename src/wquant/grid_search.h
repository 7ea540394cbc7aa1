#pragma once
// Choosing the weight grid (one scale and zero point per row, or per row and column group) and
// rounding to it: the RTN baseline of METHODS.md §5 and step 2 of the aespa pipeline (§4).
//
// Grid conventions are those of weight_quant.h (GPTQ's): codes in [0, 2^b - 1],
// w_hat = scale · (q - zero), q = clamp(round(w / scale) + zero, 0, 2^b - 1), round half to even.
//
// Min-max init of a row (or row-group) with values in [mn, mx]:
//   asymmetric: lo = min(mn, 0), hi = max(mx, 0), scale = (hi - lo) / maxq,
//               zero = clamp(round(-lo / scale), 0, maxq);
//   symmetric:  hi = max|w|, lo = -hi, scale = 2 · max|w| / maxq, zero = 2^(b-1).
//   lo == hi == 0 (an all-zero row, or a range so small its scale underflows): lo = -1, hi = +1,
//   as GPTQ does, so the scale is positive and zeros still dequantize to exactly 0.
// fp16 grids (WeightFormat::fp16, for GGUF export): each scale is rounded to fp16 before the zero
// point is taken from it; asymmetric, the scale then moves to the nearest fp16 value whose product
// with the zero point is fp16 (fit_fp16_offset), so that the Q4_1 offset −scale·zero is exact.
// Deviation from the GPTQ/aespa code: for symmetric grids they leave lo = 0 on a row with no
// negative value, which halves the scale and clips the row's top half. We use the header's
// 2·max|w|/maxq for every row.
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "wquant/weight_quant.h"

namespace tquant::wq {

// Min-max grid of W [rows, cols]. Fails on a bad format or non-finite weights.
WeightGrid minmax_grid(const Tensor& W, const WeightFormat& f);

struct GridSearchOptions {
  float min_ratio = 0.01f;  // clip ratios 1, 1 - step, ..., down to min_ratio (100 by default)
  float step = 0.01f;
  // Widest scoring block (cols, or the group size when grouped) that is scored with the exact
  // quadratic form; wider blocks use diag(H). See search_grid.
  int64_t full_h_max_width = 1024;
};

// The clip ratios the search tries, largest first: 1 - k·step for k = 0, 1, ... while >= min_ratio
// (computed in double, stored as float). Fails on step <= 0 or min_ratio outside (0, 1].
std::vector<float> clip_ratios(const GridSearchOptions& o);

// Hessian-aware grid search (METHODS.md §4 step 2). Starting from the min-max range [lo, hi] of
// each row (row-group), every clip ratio p of clip_ratios(o) gives the candidate range
// [p·lo, p·hi], scale = (p·hi - p·lo) / maxq and, asymmetric, both floor and ceil of -p·lo/scale
// as zero point (clamped to [0, maxq]); symmetric keeps zero = 2^(b-1). Each candidate is scored
// by Δw H Δwᵀ, Δw = w_hat - w, and the lowest score wins; ties keep the earlier candidate (the
// larger ratio, then floor before ceil). Ratio 1 reproduces the min-max grid, so the chosen
// score never exceeds min-max's.
//
// What "Δw H Δwᵀ" means here:
//   - grouped formats score each row-group with the group's diagonal block H[g, g] of H. Groups
//     then choose independently, as they must for a per-group search; the cross-group terms of
//     the full form would couple all groups of a row into one joint search.
//   - exact quadratic form when the scoring block width (cols, or the group size) is at most
//     o.full_h_max_width (default 1024). The candidates of all rows are scored together: one
//     sgemm ΔW·H per candidate, 2·rows·cols·width FLOPs each, 200 candidates asymmetric.
//   - wider blocks (per-channel rows of an LLM layer, cols = 4096 or 11008) use diag(H) instead:
//     Σ_j H_jj Δw_j², the per-input weighted MSE of GPTQ-style grid code. The exact form would
//     cost 200 × 2·4096³ ≈ 27 TFLOP for one 4096×4096 layer — over a hundred times the GPTQ solve
//     it prepares — while diag(H) costs one pass over W per candidate. It keeps the input
//     importance of H and drops the correlations between inputs, which GPTQ's error feedback (or
//     learned rounding) handles afterwards.
// Bit-identical for any thread count (rows are split into fixed tiles; each score is summed in a
// fixed order). H is [cols, cols], symmetric, damped (prepare_hessian).
WeightGrid search_grid(const Tensor& W, const Tensor& H, const WeightFormat& f, const GridSearchOptions& o = {});

// The same search scored by the plain squared error Σ_j Δw_j² (H = identity): the "MSE grid"
// range setting for RTN. Shares search_grid's code (the diagonal scorer with unit weights).
WeightGrid mse_grid(const Tensor& W, const WeightFormat& f, const GridSearchOptions& o = {});

// Fails with a message naming `where` unless g fits W [rows, cols] (shape, vector sizes, format)
// and every scale is finite and > 0 and every zero an integer in [0, maxq].
void check_grid(const WeightGrid& g, const Tensor& W, const char* where);

// RTN: each weight to its nearest code on g (round half to even, clamped to [0, maxq]). The
// rounding is the SSE2-vectorisable form of std::nearbyint (quant/affine_fast.h), bit-identical
// to it. zeta is left empty.
QuantizedWeight round_to_grid(const Tensor& W, const WeightGrid& g);

}  // namespace tquant::wq
