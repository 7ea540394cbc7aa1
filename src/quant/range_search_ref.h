#pragma once
// Plain reference versions of the MSE and cross-entropy grid searches for one group of data:
// nested loops over the candidates exactly as METHODS.md / range_search.h describe them, each
// scored by a direct pass with the scalar quantizer. Written independently of range_search.cc
// (no shared candidate code) so the tests compare two implementations, not one with itself.
#include <cstdint>
#include <vector>

#include "quant/affine.h"

namespace tquant {

struct RefSearchResult {
  Range range;
  double loss = 0.0;
};

// Full 2-D grid (MSE estimator) over `values`.
RefSearchResult mse_grid_ref(const std::vector<float>& values, int bits, bool symmetric, int grid_points);

// Separable grid (cross-entropy estimator): extents first, then shifts at the best extent, with
// every column of the n_rows x cols logit rows quantized (per-tensor). The loss is the plain
// cross-entropy (cross_entropy_ref), which differs from the optimised KL by a constant.
RefSearchResult cross_entropy_grid_ref(const std::vector<float>& rows, int64_t n_rows, int64_t cols,
                                       int bits, bool symmetric, int grid_points);

}  // namespace tquant
