#pragma once
// Cholesky factorisation and triangular inverse for the weight solvers (GPTQ's U = chol(H⁻¹)):
// blocked, parallel over tiles whose sizes depend only on n and the block size, each tile one
// single-threaded BLAS/LAPACK call. The result is therefore bit-identical for any OpenMP thread
// count, which OpenBLAS's own threaded spotrf/strtri are not (they block differently from the
// serial versions), while still using all cores: serial LAPACK would be the largest part of a
// GPTQ solve on a many-core machine.
#include <cstdint>

namespace tquant::wq {

// In place, row-major: the lower triangle of a [n, n] (the upper one is neither read nor written)
// becomes L, lower triangular with a = L Lᵀ. Returns 0, or the 1-based index of the first pivot
// that is not positive (LAPACK's info): a is then not positive definite and partly overwritten.
int cholesky_lower(float* a, int64_t n, int64_t block = 256);

// x [n, n] = L⁻¹ for the lower triangular L (row-major, lower triangle read, non-zero diagonal):
// lower triangular, the strictly upper part set to 0. One triangular solve per column block,
// the blocks independent.
void invert_lower(const float* L, int64_t n, float* x, int64_t block = 128);

}  // namespace tquant::wq
