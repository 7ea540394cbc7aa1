#pragma once
// Z-Fold (METHODS.md §4 step 3): one per-input-column factor zeta shared by the weight matrices
// that read the same input (Q, K, V after the attention norm; gate and up after the FFN norm),
// so that each matrix is quantized as  W[r, c] ~ scale[r] * (q[r, c] - zero[r]) * zeta[c].
//
// Algorithm. Round 0: zeta = 1 and search_grid on each W with H. Round k = 1..max_rounds:
//   (b) zeta_j = <W^_.j, W_.j> / <W^_.j, W^_.j>, least squares per column over ALL rows of ALL
//       matrices, where W^ = scale * (q - zero) are the previous round's dequantized codes of
//       W' = W diag(1/zeta_prev) WITHOUT zeta (q = round_to_grid(W', grid));
//       a column with zeta_j <= 0 or not finite (a dead or all-zero column) gets zeta_j = 1;
//   (a) given zeta, search_grid per matrix on W' = W diag(1/zeta) with H' = diag(zeta) H diag(zeta);
//   score the round by sum over matrices of tr(dW H dW^T), dW = W^' diag(zeta) - W (RTN codes on
//   the new grids). Stop at the first round whose total exceeds the best so far (ties continue),
//   or when zeta no longer changes, and return the best round; zeta = 1 (round 0) is a candidate,
//   so the result is never worse than plain search_grid.
//
// Contract for the caller (what "folding" means and what the later solvers get):
//   1. Scale the preceding norm's output by zeta: gamma_j *= zeta_j (and, for LayerNorm, also
//      beta_j *= zeta_j), so that the norm now outputs x' = zeta ⊙ x. Only valid when that norm
//      output feeds exactly the matrices passed here (its residual path reads the pre-norm
//      stream, as in OPT/LLaMA blocks).
//   2. Every matrix passed here is replaced by W' = W diag(1/zeta) (fold_weight), so W' x' = W x
//      in full precision, and is quantized on grids[k] (the grid of W', no zeta in it).
//   3. GPTQ / learned rounding then run on (W', H') with H' = diag(zeta) H diag(zeta)
//      (fold_hessian), the Hessian of x'. For aespa the other statistics fold the same way:
//      a per-head H_V,h becomes diag(zeta) H_V,h diag(zeta); G (Q/K, indexed by output rows) is
//      unchanged. The QuantizedWeight of W' has an empty zeta.
//   Equivalently, without touching the norm: quantize W itself with QuantizedWeight::zeta = zeta
//   and the original H; s (q - z) zeta_c is then the approximation of W, and the codes equal the
//   folded ones (dequantize(W' codes) diag(zeta) == the QuantizedWeight with zeta set).
//   H must already be prepared (dead inputs and damping, prepare_hessian) before calling zfold.
#include <vector>

#include "core/tensor.h"
#include "wquant/weight_quant.h"

namespace tquant::wq {

struct ZFoldResult {
  std::vector<float> zeta;         // [cols]
  std::vector<WeightGrid> grids;   // one per weight, the grid of W' = W diag(1/zeta)
  int rounds = 0;                  // accepted zeta updates (0: zeta = 1 was best)
  double objective = 0;            // sum over weights of tr(dW H dW^T) at the returned zeta/grids
  double objective_initial = 0;    // the same at round 0 (zeta = 1, plain search_grid)
};

// weights: the matrices sharing the input (each [rows_k, cols]); H: [cols, cols], prepared.
ZFoldResult zfold(const std::vector<const Tensor*>& weights, const Tensor& H, const WeightFormat& f,
                  int max_rounds = 30);

// W' = W diag(1/zeta).
Tensor fold_weight(const Tensor& W, const std::vector<float>& zeta);
// H' = diag(zeta) H diag(zeta).
Tensor fold_hessian(const Tensor& H, const std::vector<float>& zeta);
// One least-squares zeta update (step (b) above): per column j over all rows of all weights,
// zeta_j = <Wq_.j, W_.j> / <Wq_.j, Wq_.j> with Wq = scale * (q - zero) of each quantized weight
// (its own zeta ignored); zeta_j <= 0 or not finite -> 1.
std::vector<float> zeta_least_squares(const std::vector<const Tensor*>& weights,
                                      const std::vector<QuantizedWeight>& quantized);

}  // namespace tquant::wq
