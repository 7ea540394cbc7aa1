#include "wquant/zfold.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "wquant/grid_search.h"
#include "wquant/learned_rounding.h"

namespace tquant::wq {

Tensor fold_weight(const Tensor& W, const std::vector<float>& zeta) {
  const int64_t R = W.dim(0), C = W.dim(1);
  if (static_cast<int64_t>(zeta.size()) != C) fail("fold_weight: zeta has {} entries for {} columns", zeta.size(), C);
  Tensor out = Tensor::uninitialized({R, C});
  const float* w = W.data();
  float* o = out.data();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) o[r * C + c] = w[r * C + c] / zeta[c];
  return out;
}

Tensor fold_hessian(const Tensor& H, const std::vector<float>& zeta) {
  const int64_t C = H.dim(0);
  if (H.ndim() != 2 || H.dim(1) != C) fail("fold_hessian: H is {}, expected square", shape_str(H.shape()));
  if (static_cast<int64_t>(zeta.size()) != C) fail("fold_hessian: zeta has {} entries for {} columns", zeta.size(), C);
  Tensor out = Tensor::uninitialized({C, C});
  const float* h = H.data();
  float* o = out.data();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < C; ++i)
    for (int64_t j = 0; j < C; ++j) o[i * C + j] = zeta[i] * h[i * C + j] * zeta[j];
  return out;
}

std::vector<float> zeta_least_squares(const std::vector<const Tensor*>& weights,
                                      const std::vector<QuantizedWeight>& quantized) {
  if (weights.empty() || weights.size() != quantized.size())
    fail("zeta least squares: {} weights and {} quantized weights", weights.size(), quantized.size());
  const int64_t C = weights[0]->dim(1);
  for (size_t k = 0; k < weights.size(); ++k)
    if (weights[k]->dim(1) != C || quantized[k].grid.cols != C || quantized[k].grid.rows != weights[k]->dim(0))
      fail("zeta least squares: weight {} does not match", k);
  std::vector<float> zeta(static_cast<size_t>(C));
  // Per column, rows in a fixed order: the result does not depend on the thread count.
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    double num = 0, den = 0;
    for (size_t k = 0; k < weights.size(); ++k) {
      const Tensor& W = *weights[k];
      const QuantizedWeight& q = quantized[k];
      for (int64_t r = 0; r < W.dim(0); ++r) {
        const int64_t g = q.grid.index(r, c);
        const double wq = static_cast<double>(q.grid.scale[g]) * (static_cast<double>(q.codes[r * C + c]) - q.grid.zero[g]);
        num += wq * W[r * C + c];
        den += wq * wq;
      }
    }
    const double z = num / den;
    zeta[c] = den > 0 && std::isfinite(z) && z > 0 && std::isfinite(static_cast<float>(z)) ? static_cast<float>(z) : 1.f;
  }
  return zeta;
}

namespace {

// sum_k tr(dW_k H dW_k^T), dW_k = dequantize(q_k with zeta) - W_k.
double total_objective(const std::vector<const Tensor*>& weights, const std::vector<QuantizedWeight>& q,
                       const Objective& obj) {
  double total = 0;
  for (size_t k = 0; k < weights.size(); ++k) {
    Tensor dW = q[k].dequantize();
    const Tensor& W = *weights[k];
    float* d = dW.data();
    const int64_t n = W.numel();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) d[i] -= W[i];
    total += objective_value(obj, dW);
  }
  return total;
}

}  // namespace

ZFoldResult zfold(const std::vector<const Tensor*>& weights, const Tensor& H, const WeightFormat& f, int max_rounds) {
  if (weights.empty()) fail("zfold: no weights");
  if (max_rounds < 0) fail("zfold: max_rounds {} is negative", max_rounds);
  const int64_t C = weights[0]->ndim() == 2 ? weights[0]->dim(1) : -1;
  for (size_t k = 0; k < weights.size(); ++k) {
    const Tensor* W = weights[k];
    if (!W || W->ndim() != 2 || W->dim(1) != C)
      fail("zfold: weight {} is {}, expected [rows, {}] like the first", k, W ? shape_str(W->shape()) : "null", C);
  }
  if (H.ndim() != 2 || H.dim(0) != C || H.dim(1) != C)
    fail("zfold: H is {}, expected [{}, {}]", shape_str(H.shape()), C, C);
  check_format(f, C, "zfold");
  const size_t nw = weights.size();

  Objective obj;
  obj.H = {H};
  // Grids on W' = W diag(1/zeta) with H', then RTN codes; q carries zeta so that it
  // dequantizes to the approximation of W itself.
  auto solve = [&](const std::vector<float>& zeta, std::vector<WeightGrid>& grids, std::vector<QuantizedWeight>& q) {
    const bool ones = std::all_of(zeta.begin(), zeta.end(), [](float z) { return z == 1.f; });
    const Tensor Hf = ones ? H : fold_hessian(H, zeta);
    grids.resize(nw);
    q.resize(nw);
    for (size_t k = 0; k < nw; ++k) {
      const Tensor Wf = ones ? *weights[k] : fold_weight(*weights[k], zeta);
      grids[k] = search_grid(Wf, Hf, f);
      q[k] = round_to_grid(Wf, grids[k]);
      q[k].zeta = zeta;
    }
    return total_objective(weights, q, obj);
  };

  ZFoldResult best;
  best.zeta.assign(static_cast<size_t>(C), 1.f);
  std::vector<QuantizedWeight> q;
  best.objective = best.objective_initial = solve(best.zeta, best.grids, q);

  std::vector<float> zeta = best.zeta;
  for (int round = 1; round <= max_rounds; ++round) {
    std::vector<float> next = zeta_least_squares(weights, q);
    if (next == zeta) break;  // converged: every later round would repeat this one
    zeta = std::move(next);
    std::vector<WeightGrid> grids;
    const double total = solve(zeta, grids, q);
    if (!(total <= best.objective)) break;  // the loss rose (or is not a number): keep the best
    best.zeta = zeta;
    best.grids = std::move(grids);
    best.objective = total;
    best.rounds = round;
  }
  return best;
}

}  // namespace tquant::wq
