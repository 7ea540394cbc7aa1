#pragma once
// The layer Hessian H = E[x xᵀ] of the OPTQ objective tr(ΔW H ΔWᵀ): accumulating it from
// calibration inputs, and the clean-up every solver needs before using it (METHODS.md §4 step 1).
#include <cstdint>

#include "core/tensor.h"

namespace tquant::wq {

// H [cols, cols] += weight · Xᵀ X for X [rows, cols] row-major (one row per token) with row
// stride ld (0: cols), so that one head's slice of a wider activation can be accumulated.
//
// The GPTQ/aespa reference keeps the running mean H = (2/N) Σ_t x_t x_tᵀ over the N calibration
// tokens; the factor 2 is the gradient convention of the quadratic, and it matters wherever H is
// mixed with something that does not scale with it (damping is relative, so there it does not).
// Callers that know N up front pass weight = 2/N for every batch; callers that do not can pass 1
// and scale H by 2/N at the end. Either way the result is symmetric (both triangles written).
//
// The product is split into column blocks whose size depends only on `cols`, each a
// single-threaded BLAS call inside an OpenMP loop, so H is bit-identical for any thread count
// (OpenBLAS's own threading partitions by thread count). Fails when H is not [cols, cols].
void accumulate_xtx(Tensor& H, const float* X, int64_t rows, int64_t cols, float weight, int64_t ld = 0);

struct HessianReport {
  int64_t dead_inputs = 0;  // columns with H[j][j] == 0 (inputs that were always zero)
  float damp = 0;           // the value added to every diagonal entry
};

// Makes H safe to factorise, in place, as the reference does before GPTQ / the grid search:
//   1. dead input j (H[j][j] == 0): no calibration token ever used it, so its weights cannot be
//      judged; zero column j of W (the reference's choice: it removes the column from the problem
//      and keeps the dequantized model consistent with what was measured) and set H[j][j] = 1 so
//      H has no zero pivot;
//   2. add percdamp · mean(diag H) (after step 1) to every diagonal entry, so that H is positive
//      definite and the GPTQ updates stay bounded when inputs are nearly collinear.
// W is [rows, cols] and H [cols, cols]; fails on other shapes, a negative percdamp or a
// non-finite diagonal.
HessianReport prepare_hessian(Tensor& H, Tensor& W, double percdamp = 0.01);

}  // namespace tquant::wq
