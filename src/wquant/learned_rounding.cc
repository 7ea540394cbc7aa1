#include "wquant/learned_rounding.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tquant::wq {

namespace {

// Elementwise loops over fewer elements run on one thread: an OpenMP region per step of a
// small problem costs more than the work (badly so on a loaded machine). Either way every
// element is computed by the same arithmetic, so results do not depend on the choice.
constexpr int64_t kParallelMin = int64_t{1} << 16;
constexpr double kBlasSerialMnk = 65536.0 * 4.0;

}  // namespace

float rectified_sigmoid(float a) {
  const float s = 1.f / (1.f + std::exp(-a));
  return std::clamp(s * (kStretchHigh - kStretchLow) + kStretchLow, 0.f, 1.f);
}

float rectified_sigmoid_inverse(float h) {
  // sigmoid(a) = (h - low) / (high - low)  =>  a = -log((high - low) / (h - low) - 1).
  const double hc = std::clamp<double>(h, 0.0, 1.0);
  return static_cast<float>(-std::log((kStretchHigh - kStretchLow) / (hc - kStretchLow) - 1.0));
}

RoundingOptions adaround_defaults() {
  RoundingOptions o;
  o.iters = 5000;
  o.lr = 1e-3f;
  o.lambda = 0.01f;
  o.warmup = 0.2f;
  o.beta_start = 20.f;
  o.beta_end = 2.f;
  o.init = RoundingInit::kFractional;
  return o;
}

RoundingOptions aespa_defaults(bool qkv) {
  RoundingOptions o;
  o.iters = 2000;
  o.lr = 0.015f;
  o.lambda = qkv ? 1.5f : 1.0f;
  o.warmup = 0.2f;
  o.beta_start = 20.f;
  o.beta_end = 2.f;
  o.init = RoundingInit::kFromCodes;
  return o;
}

// ---------------------------------------------------------------------------------------------
// GEMM and the objective

void gemm_nn(const float* A, const float* B, float* C, int64_t M, int64_t N, int64_t K) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    std::fill(C, C + M * N, 0.f);
    return;
  }
  // OpenBLAS runs a product with M*N*K <= 65536 * GEMM_MULTITHREAD_THRESHOLD (4 by default)
  // single-threaded on its own; calling it directly avoids an OpenMP region per tiny product.
  if (static_cast<double>(M) * N * K <= kBlasSerialMnk) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.f, A, K, B, N, 0.f, C, N);
    return;
  }
  // Larger ones: tiles whose sizes depend only on the shape, each a single-threaded sgemm (the
  // OpenMP build of OpenBLAS runs one thread inside an active parallel region, and with one
  // OpenMP thread it has one thread anyway), so every output element is computed the same way
  // for any thread count. The region is entered even for a single tile for that reason.
  constexpr int64_t kRowTile = 128, kColTile = 256;
  if (M >= 2 * kRowTile || M >= N) {
    const int64_t tiles = (M + kRowTile - 1) / kRowTile;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t r0 = t * kRowTile, m = std::min(kRowTile, M - r0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, N, K, 1.f, A + r0 * K, K, B, N, 0.f, C + r0 * N, N);
    }
  } else {
    const int64_t tiles = (N + kColTile - 1) / kColTile;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t c0 = t * kColTile, n = std::min(kColTile, N - c0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, n, K, 1.f, A, K, B + c0, N, 0.f, C + c0, N);
    }
  }
}

namespace {

void check_objective(const Objective& obj, int64_t R, int64_t C, const char* where) {
  if (obj.H.empty()) fail("{}: the objective has no H", where);
  const int64_t nh = obj.heads();
  if (R % nh != 0) fail("{}: {} rows do not split into {} heads", where, R, nh);
  if (obj.H.size() != 1 && static_cast<int64_t>(obj.H.size()) != nh)
    fail("{}: {} H matrices for {} heads", where, obj.H.size(), nh);
  if (!obj.G.empty() && static_cast<int64_t>(obj.G.size()) != nh)
    fail("{}: {} G matrices for {} heads", where, obj.G.size(), nh);
  for (const Tensor& H : obj.H)
    if (H.ndim() != 2 || H.dim(0) != C || H.dim(1) != C)
      fail("{}: H is {}, expected [{}, {}]", where, shape_str(H.shape()), C, C);
  const int64_t rh = R / nh;
  for (const Tensor& G : obj.G)
    if (G.ndim() != 2 || G.dim(0) != rh || G.dim(1) != rh)
      fail("{}: G is {}, expected [{}, {}]", where, shape_str(G.shape()), rh, rh);
}

// P = G_h dW_h H_h per head (dW_h H_h without G), [R, C]. `tmp` holds R/heads x C floats.
void head_products(const Objective& obj, const float* dW, int64_t R, int64_t C, float* P, std::vector<float>& tmp) {
  const int64_t nh = obj.heads(), rh = R / nh;
  for (int64_t h = 0; h < nh; ++h) {
    const float* d = dW + h * rh * C;
    float* p = P + h * rh * C;
    if (obj.G.empty()) {
      gemm_nn(d, obj.H_of(h).data(), p, rh, C, C);
    } else {
      tmp.resize(static_cast<size_t>(rh * C));
      gemm_nn(d, obj.H_of(h).data(), tmp.data(), rh, C, C);
      gemm_nn(obj.G[h].data(), tmp.data(), p, rh, C, rh);
    }
  }
}

// sum_i P[i] * dW[i] in double: per-row partial sums (any thread), then rows in order.
double fixed_order_dot(const float* P, const float* dW, int64_t R, int64_t C) {
  std::vector<double> row(static_cast<size_t>(R));
#pragma omp parallel for schedule(static) if (R * C >= kParallelMin)
  for (int64_t r = 0; r < R; ++r) {
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += static_cast<double>(P[r * C + c]) * dW[r * C + c];
    row[r] = s;
  }
  double total = 0;
  for (int64_t r = 0; r < R; ++r) total += row[r];
  return total;
}

}  // namespace

double objective_value(const Objective& obj, const Tensor& dW) {
  const int64_t R = dW.dim(0), C = dW.dim(1);
  check_objective(obj, R, C, "objective");
  std::vector<float> P(static_cast<size_t>(R * C)), tmp;
  head_products(obj, dW.data(), R, C, P.data(), tmp);
  return fixed_order_dot(P.data(), dW.data(), R, C);
}

Tensor objective_gradient(const Objective& obj, const Tensor& dW) {
  const int64_t R = dW.dim(0), C = dW.dim(1);
  check_objective(obj, R, C, "objective gradient");
  Tensor g = Tensor::uninitialized({R, C});
  std::vector<float> tmp;
  head_products(obj, dW.data(), R, C, g.data(), tmp);
  float* p = g.data();
#pragma omp parallel for schedule(static) if (R * C >= kParallelMin)
  for (int64_t i = 0; i < R * C; ++i) p[i] *= 2.f;
  return g;
}

// ---------------------------------------------------------------------------------------------
// The relaxed problem

RelaxedRounding::RelaxedRounding(const Tensor& W, const QuantizedWeight& init)
    : W_(W), grid_(init.grid), zeta_(init.zeta), init_codes_(init.codes) {
  if (W.ndim() != 2) fail("learned rounding: the weight is {}, expected 2-D", shape_str(W.shape()));
  R_ = W.dim(0);
  C_ = W.dim(1);
  if (grid_.rows != R_ || grid_.cols != C_)
    fail("learned rounding: the grid is for [{}, {}] but the weight is [{}, {}]", grid_.rows, grid_.cols, R_, C_);
  check_format(grid_.format, C_, "learned rounding");
  const size_t ng = static_cast<size_t>(R_ * grid_.format.groups_per_row(C_));
  if (grid_.scale.size() != ng || grid_.zero.size() != ng)
    fail("learned rounding: the grid has {} scales and {} zeros, expected {}", grid_.scale.size(), grid_.zero.size(), ng);
  if (init_codes_.size() != static_cast<size_t>(R_ * C_))
    fail("learned rounding: init has {} codes for a [{}, {}] weight", init_codes_.size(), R_, C_);
  if (!zeta_.empty() && static_cast<int64_t>(zeta_.size()) != C_)
    fail("learned rounding: zeta has {} entries for {} columns", zeta_.size(), C_);
  maxq_ = static_cast<float>(grid_.format.max_code());
  base_.resize(static_cast<size_t>(R_ * C_));
  free_.resize(static_cast<size_t>(R_ * C_));
  // Per-element step and zero point, so the per-iteration loops need no group lookups.
  step_.resize(static_cast<size_t>(R_ * C_));
  zero_.resize(static_cast<size_t>(R_ * C_));
  for (int64_t r = 0; r < R_; ++r)
    for (int64_t c = 0; c < C_; ++c) {
      const float s = grid_.scale[grid_.index(r, c)];
      step_[r * C_ + c] = zeta_.empty() ? s : s * zeta_[c];
      zero_[r * C_ + c] = grid_.zero[grid_.index(r, c)];
    }
  const float* w = W_.data();
#pragma omp parallel for schedule(static) if (R_ * C_ >= kParallelMin)
  for (int64_t r = 0; r < R_; ++r)
    for (int64_t c = 0; c < C_; ++c) {
      const int64_t i = r * C_ + c;
      const float st = step(i);
      if (std::isfinite(st) && st > 0.f && std::isfinite(w[i])) {
        const float b = std::floor(w[i] / st) + grid_.zero[grid_.index(r, c)];
        base_[i] = b;
        free_[i] = b >= 0.f && b <= maxq_ - 1.f;
      } else {
        base_[i] = init_codes_[i];
        free_[i] = 0;
      }
    }
}

float RelaxedRounding::step(int64_t i) const { return step_[i]; }

std::vector<float> RelaxedRounding::initial_alpha(RoundingInit mode, float margin, int* unrepresentable) const {
  if (mode == RoundingInit::kFromCodes && !(margin > 0.f && margin < 0.5f)) fail("learned rounding: code_init_margin {} is outside (0, 0.5)", margin);
  std::vector<float> alpha(static_cast<size_t>(R_ * C_), 0.f);
  const float* w = W_.data();
  int64_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad) if (R_ * C_ >= kParallelMin)
  for (int64_t i = 0; i < R_ * C_; ++i) {
    const float b = base_[i];
    const float code = init_codes_[i];
    if (mode == RoundingInit::kFromCodes) {
      // Representable: init's code is what clamp(b + {0 or 1}) gives.
      const float lo = std::clamp(b, 0.f, maxq_), hi = std::clamp(b + 1.f, 0.f, maxq_);
      if (code != lo && code != hi) ++bad;
    }
    if (!free_[i]) continue;  // alpha has no effect on a fixed element
    float target;
    if (mode == RoundingInit::kFractional) {
      const float v = w[i] / step(i);
      target = v - std::floor(v);  // in [0, 1)
    } else {
      target = code - b >= 0.5f ? 1.f - margin : margin;  // code - b clamped to [0, 1], softened
    }
    alpha[i] = rectified_sigmoid_inverse(target);
  }
  if (unrepresentable) *unrepresentable = static_cast<int>(bad);
  return alpha;
}

void RelaxedRounding::soft(const std::vector<float>& alpha, float* dW, float* dh, float* hv) const {
  const float* w = W_.data();
  constexpr float kSpan = kStretchHigh - kStretchLow;
#pragma omp parallel for schedule(static) if (R_ * C_ >= kParallelMin)
  for (int64_t r = 0; r < R_; ++r)
    for (int64_t c = 0; c < C_; ++c) {
      const int64_t i = r * C_ + c;
      const float st = step_[i], z = zero_[i];
      if (!free_[i]) {
        const float code = std::clamp(base_[i], 0.f, maxq_);
        dW[i] = (std::isfinite(st) ? st * (code - z) : 0.f) - w[i];
        if (dh) dh[i] = 0.f, hv[i] = 0.f;
        continue;
      }
      const float s = 1.f / (1.f + std::exp(-alpha[i]));
      const float u = s * kSpan + kStretchLow;
      const float h = std::clamp(u, 0.f, 1.f);
      dW[i] = st * (base_[i] + h - z) - w[i];  // b + h lies in [0, maxq] for a free element
      if (dh) {
        // The clamp passes the gradient on [0, 1] inclusive (as torch.clamp does).
        dh[i] = (u >= 0.f && u <= 1.f) ? kSpan * s * (1.f - s) : 0.f;
        hv[i] = h;
      }
    }
}

Tensor RelaxedRounding::soft_weight(const std::vector<float>& alpha) const {
  Tensor dW = Tensor::uninitialized({R_, C_});
  soft(alpha, dW.data(), nullptr, nullptr);
  float* d = dW.data();
  const float* w = W_.data();
#pragma omp parallel for schedule(static) if (R_ * C_ >= kParallelMin)
  for (int64_t i = 0; i < R_ * C_; ++i) d[i] += w[i];
  return dW;
}

std::vector<uint8_t> RelaxedRounding::hard_codes(const std::vector<float>& alpha) const {
  std::vector<uint8_t> codes(static_cast<size_t>(R_ * C_));
#pragma omp parallel for schedule(static) if (R_ * C_ >= kParallelMin)
  for (int64_t i = 0; i < R_ * C_; ++i) {
    const float up = free_[i] && alpha[i] >= 0.f ? 1.f : 0.f;
    codes[i] = static_cast<uint8_t>(std::clamp(base_[i] + up, 0.f, maxq_));
  }
  return codes;
}

double RelaxedRounding::loss_and_grad(const Objective& obj, const std::vector<float>& alpha, float lambda,
                                      float beta, bool regularise, std::vector<float>& grad) const {
  Workspace ws;
  return loss_and_grad(obj, alpha, lambda, beta, regularise, grad, ws);
}

double RelaxedRounding::loss_and_grad(const Objective& obj, const std::vector<float>& alpha, float lambda,
                                      float beta, bool regularise, std::vector<float>& grad, Workspace& ws) const {
  const int64_t n = R_ * C_;
  ws.dW.resize(static_cast<size_t>(n));
  ws.dh.resize(static_cast<size_t>(n));
  ws.hv.resize(static_cast<size_t>(n));
  ws.P.resize(static_cast<size_t>(n));
  ws.row.resize(static_cast<size_t>(2 * R_));
  grad.resize(static_cast<size_t>(n));
  soft(alpha, ws.dW.data(), ws.dh.data(), ws.hv.data());
  head_products(obj, ws.dW.data(), R_, C_, ws.P.data(), ws.tmp);
  const float* P = ws.P.data();
  const float* dW = ws.dW.data();
  const float* dh = ws.dh.data();
  const float* hv = ws.hv.data();
  // One pass: the objective sum_i P_i dW_i, the regulariser, and
  //   dL/da = (2 P * step + lambda * d/dh (1 - |2h - 1|^beta)) * dh/da.
  // Per-row partial sums, added in row order below: independent of the thread count.
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t r = 0; r < R_; ++r) {
    double obj_r = 0, reg_r = 0;
    for (int64_t c = 0; c < C_; ++c) {
      const int64_t i = r * C_ + c;
      obj_r += static_cast<double>(P[i]) * dW[i];
      if (!free_[i]) {
        grad[i] = 0.f;
        continue;
      }
      float g = 2.f * P[i] * step_[i];
      if (regularise) {
        const float x = 2.f * hv[i] - 1.f, ax = std::fabs(x);
        if (ws.want_loss) reg_r += 1.0 - std::pow(static_cast<double>(ax), static_cast<double>(beta));
        // d/dh (1 - |2h - 1|^beta) = -2 beta |2h - 1|^(beta - 1) sign(2h - 1)
        const float d = ax > 0.f ? -2.f * beta * std::pow(ax, beta - 1.f) * (x > 0.f ? 1.f : -1.f) : 0.f;
        g += lambda * d;
      }
      grad[i] = g * dh[i];
    }
    ws.row[2 * r] = obj_r;
    ws.row[2 * r + 1] = reg_r;
  }
  double f = 0, reg = 0;
  for (int64_t r = 0; r < R_; ++r) f += ws.row[2 * r], reg += ws.row[2 * r + 1];
  return regularise ? f + static_cast<double>(lambda) * reg : f;
}

// ---------------------------------------------------------------------------------------------
// The solver

RoundingResult learn_rounding(const Tensor& W, const Objective& obj, const QuantizedWeight& init,
                              const RoundingOptions& o) {
  if (o.iters < 0) fail("learned rounding: {} iterations", o.iters);
  if (!(o.lr > 0.f)) fail("learned rounding: learning rate {} is not positive", o.lr);
  if (!(o.lambda >= 0.f)) fail("learned rounding: lambda {} is negative", o.lambda);
  if (!(o.warmup >= 0.f && o.warmup <= 1.f)) fail("learned rounding: warm-up {} is outside [0, 1]", o.warmup);
  if (!(o.beta_start >= 1.f && o.beta_end >= 1.f))
    fail("learned rounding: beta {} -> {} must stay >= 1", o.beta_start, o.beta_end);
  const RelaxedRounding problem(W, init);
  const int64_t R = problem.rows(), C = problem.cols(), n = R * C;
  check_objective(obj, R, C, "learned rounding");

  RoundingResult res;
  std::vector<float> alpha = problem.initial_alpha(o.init, o.code_init_margin, &res.unrepresentable);

  auto objective_of = [&](const QuantizedWeight& q) {
    Tensor dW = q.dequantize();
    float* d = dW.data();
    const float* w = W.data();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) d[i] -= w[i];
    return objective_value(obj, dW);
  };
  res.objective_init = objective_of(init);

  // Adam (beta1 0.9, beta2 0.999, eps 1e-8) as torch.optim.Adam computes it.
  constexpr double kB1 = 0.9, kB2 = 0.999;
  constexpr float kEps = 1e-8f;
  std::vector<float> m(static_cast<size_t>(n), 0.f), v(static_cast<size_t>(n), 0.f), grad;
  RelaxedRounding::Workspace ws;
  ws.want_loss = false;  // Adam needs only the gradient
  const int64_t reg_start = static_cast<int64_t>(std::ceil(static_cast<double>(o.warmup) * o.iters));
  for (int64_t t = 0; t < o.iters; ++t) {
    const bool regularise = t >= reg_start && o.lambda > 0.f;
    float beta = o.beta_start;
    if (regularise && o.iters > reg_start) {
      const double rel = static_cast<double>(t - reg_start) / static_cast<double>(o.iters - reg_start);
      beta = static_cast<float>(o.beta_end + (o.beta_start - o.beta_end) * std::max(0.0, 1.0 - rel));
    }
    if (o.progress && t % 50 == 0) o.progress(static_cast<int>(t), o.iters);
    problem.loss_and_grad(obj, alpha, o.lambda, beta, regularise, grad, ws);
    const double bc1 = 1.0 - std::pow(kB1, static_cast<double>(t + 1));
    const double bc2 = 1.0 - std::pow(kB2, static_cast<double>(t + 1));
    const float step_size = static_cast<float>(o.lr / bc1), inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      const float g = grad[i];
      m[i] = static_cast<float>(kB1) * m[i] + static_cast<float>(1.0 - kB1) * g;
      v[i] = static_cast<float>(kB2) * v[i] + static_cast<float>(1.0 - kB2) * g * g;
      alpha[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + kEps);
    }
  }

  res.weight.grid = init.grid;
  res.weight.zeta = init.zeta;
  res.weight.codes = problem.hard_codes(alpha);
  res.objective_final = objective_of(res.weight);
  if (o.keep_init_if_better && res.objective_init < res.objective_final) {
    res.weight = init;
    res.objective_final = res.objective_init;
    res.kept_init = true;
  }
  for (int64_t i = 0; i < n; ++i) res.changed += res.weight.codes[i] != init.codes[i];
  return res;
}

}  // namespace tquant::wq
