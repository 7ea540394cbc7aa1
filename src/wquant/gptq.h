#pragma once
// GPTQ / OPTQ (Frantar et al. 2022; METHODS.md §5, and the OPTQ init of the aespa pipeline §4):
// quantize W column by column onto a fixed grid, each time spreading the rounding error of the
// column over the not-yet-quantized columns so that tr(ΔW H ΔWᵀ) stays small.
#include <cstdint>

#include "core/tensor.h"
#include "wquant/weight_quant.h"

namespace tquant::wq {

struct GptqOptions {
  int64_t block = 128;     // columns per lazy-update block (the reference's blocksize)
  bool act_order = false;  // process columns by diag H descending (stable sort: ties keep index order)
};

// What the solve had to do beyond the plain algorithm.
struct GptqReport {
  int damping_retries = 0;  // times H failed to factorise and was damped more
  float extra_damp = 0;     // total added to diag H on top of the caller's damping
};

// Quantizes W [rows, cols] onto `grid` (kept as given: GPTQ does not move scales) with the
// Hessian H [cols, cols], already prepared (prepare_hessian: dead inputs handled, damped).
//
// Algorithm, as the reference: U = the upper Cholesky factor of H⁻¹ (of the permuted H with
// act-order); then in blocks of o.block columns, for each column i: q_i = round w_i onto the grid,
// err = (w_i - ŵ_i) / U_ii, w_j -= err · U_ij for the block's later columns j; after the block,
// all later columns at once: W[:, end:] -= Err · U[block, end:] (one sgemm per row chunk).
// Groups are static: column c always uses the (scale, zero) of its group in the ORIGINAL column
// order, also under act-order, so the result needs no g_idx.
//
// U is the same matrix as the reference's chol(cholesky_inverse(chol(H)), upper=True) but is
// computed as J L⁻¹ J with J H J = L Lᵀ (J reverses the order; see gptq.cc): one Cholesky and
// one triangular inverse, 2n³/3 FLOPs instead of the reference's 4n³/3, and no explicit H⁻¹.
//
// Float arithmetic like the reference. Bit-identical for any OpenMP thread count: rows are solved
// independently in fixed chunks of rows (each chunk's sgemm single-threaded), and the
// factorisation is blocked into shape-fixed tiles (cholesky.h) instead of OpenBLAS's threaded
// LAPACK, whose rounding depends on the thread count.
//
// If H does not factorise (not positive definite), 1%, 10% and then 100% of mean(diag H) is added
// to the diagonal and the factorisation retried (see GptqReport); after that it fails with a
// tquant::Error saying H is not positive definite. Naming the layer is the caller's job (catch
// and rethrow). Also fails on mismatched shapes, an invalid grid, block < 1 or non-finite W or H.
QuantizedWeight gptq(const Tensor& W, const Tensor& H, const WeightGrid& grid, const GptqOptions& o = {},
                     GptqReport* report = nullptr);

}  // namespace tquant::wq
