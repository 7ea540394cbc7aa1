#pragma once
// Learned rounding on a fixed grid: AdaRound (METHODS.md §2) with the closed-form quadratic
// objective of aespa (METHODS.md §4 step 5), so no iteration touches calibration data.
//
// The grid (scale, zero, Z-Fold zeta) is taken from `init` and never changes. Per element
// (r, c), with step = scale[grid.index(r, c)] * zeta[c] (zeta = 1 when init.zeta is empty):
//   base  b     = floor(W / step) + zero                         (an integer code, maybe < 0)
//   h(a)        = clamp(sigmoid(a) * (kStretchHigh - kStretchLow) + kStretchLow, 0, 1)
//   soft code   = clamp(b + h(a), 0, maxq)
//   W~          = step * (soft code - zero)
// and the loss minimised by Adam over a is
//   L(a) = f(W~) + lambda * sum_elements (1 - |2 h(a) - 1|^beta)
// where f is the Objective (sum_h tr(G_h dW_h H_h dW_h^T), dW = W~ - W), its gradient taken in
// closed form, 2 G_h dW_h H_h (H and G must be symmetric, as prepare_hessian leaves them).
// The regulariser is off for the first `warmup` fraction of the iterations; afterwards beta falls
// linearly from beta_start to beta_end. At the end each element rounds hard: code =
// clamp(b + [a >= 0], 0, maxq) (a >= 0 <=> h(a) >= 0.5), so every final code is clamp(b) or
// clamp(b + 1): AdaRound only ever chooses between rounding down and rounding up.
//
// Normalisation (what lambda is relative to): none beyond the objective's own. f is used exactly
// as Objective::evaluate defines it and the regulariser is SUMMED over the elements (the free ones:
// an element clipped outside the grid has a constant code and adds a constant), which is the
// scale of both reference codes: AdaRound's reconstruction loss is the squared output error
// summed over output features and averaged over samples, tr(dW E[x x^T] dW^T), and aespa's
// is sum((E H) * E) with H = (2/N) sum x x^T; both add lambda * (sum of the regulariser over
// elements). So lambda is meaningful when H is a per-token MEAN (the project's convention,
// H = (2/N) sum x x^T), not a sum over tokens: a sum scales f by N and silences the regulariser.
// With H = (2/N) sum x x^T, f is twice AdaRound's ||W x - W~ x||^2, so adaround_defaults()'s
// lambda = 0.01 weighs the regulariser half as much as AdaRound's code did; this is within the
// range AdaRound tunes lambda over and we keep METHODS' number. Since Adam is invariant to the
// scale of the loss, only the ratio of f to lambda * regulariser matters.
//
// Cost per iteration: one sgemm dW H (rows x cols x cols) plus, with G, one G dW H per head
// (rows/heads)^2 x cols; everything else is elementwise. That is 2 * rows * cols^2 FLOPs per
// iteration: about 137 GFLOP for a 4096 x 4096 layer, ~275 TFLOP for aespa's 2000 iterations, so
// on a CPU learned rounding is only practical for small models. Results do not depend on the
// OpenMP thread count: each GEMM is cut into shape-determined tiles, each a single-threaded
// sgemm (products of at most 2^18 multiply-adds go to sgemm whole, which OpenBLAS runs on one
// thread), elementwise work is per element, and every reduction runs in a fixed order.
#include <cstdint>
#include <functional>
#include <vector>

#include "core/tensor.h"
#include "wquant/weight_quant.h"

namespace tquant::wq {

// The rectified sigmoid's stretch constants (Louizos et al.; AdaRound's zeta = 1.1 and
// gamma = -0.1). Not to be confused with the Z-Fold factor zeta.
constexpr float kStretchLow = -0.1f;
constexpr float kStretchHigh = 1.1f;

// h(a) = clamp(sigmoid(a) * (kStretchHigh - kStretchLow) + kStretchLow, 0, 1).
float rectified_sigmoid(float a);
// The a with h(a) = h, for h in [0, 1] (finite there: |a| <= ln 11).
float rectified_sigmoid_inverse(float h);

enum class RoundingInit {
  // h(a) = frac(W / step): AdaRound's initialisation, the natural one after RTN (its hard
  // rounding at a = 0 is round-half-up of W / step, which is RTN away from exact ties).
  kFractional,
  // h(a) from the codes of `init` (e.g. OPTQ's): target t = clamp(code - b, 0, 1), softened to
  // code_init_margin (t = 0) or 1 - code_init_margin (t = 1). The hard rounding at the start
  // reproduces every representable init code exactly. A code outside {clamp(b), clamp(b + 1)}
  // (OPTQ may move a weight more than one step from floor(W / step)) cannot be represented: it
  // starts from the clamped target and is counted in RoundingResult::unrepresentable.
  kFromCodes,
};

struct RoundingOptions {
  int iters = 2000;
  float lr = 0.015f;
  float lambda = 1.0f;
  float warmup = 0.2f;  // fraction of iters with the regulariser off
  float beta_start = 20.f;
  float beta_end = 2.f;
  RoundingInit init = RoundingInit::kFractional;
  // kFromCodes: the soft target's distance from 0 or 1. Exactly 0 or 1 would sit on the edge of
  // the rectified sigmoid's flat region, so every element whose first Adam step points outwards
  // would freeze there for good (zero gradient); 0.1 keeps the sigmoid slope within 2x of its
  // fractional-init typical value while the start still rounds to the init codes. In (0, 0.5).
  float code_init_margin = 0.1f;
  // Return `init` unchanged when the learned codes end with a higher objective than it
  // (learned rounding then never makes a layer worse than its initialisation).
  bool keep_init_if_better = true;
  // Called every 50 iterations with (iteration, iters), for progress displays.
  std::function<void(int, int)> progress;
};

// METHODS §2: lambda 0.01, Adam lr 1e-3, beta 20 -> 2 after a 20% warm-up, 1000-10000 iterations
// (we take 5000); fractional init.
RoundingOptions adaround_defaults();
// METHODS §4 step 5: lr 0.015, 2000 iterations, lambda 1.5 for Q/K/V and 1.0 elsewhere,
// warm-up 0.2, beta 20 -> 2; init from the codes (aespa runs it after the OPTQ init; set
// init = kFractional when the init is RTN). The aespa code instead takes the base AND the
// fractional start from OPTQ's updated (error-compensated) weights, floor(W_upd / step) and
// frac(W_upd / step), so its codes move around OPTQ's rather than around floor(W / step); with
// only init's codes to go on we keep AdaRound's base floor(W / step) and start from the codes.
RoundingOptions aespa_defaults(bool qkv);

struct RoundingResult {
  QuantizedWeight weight;      // init's grid and zeta, the learned codes
  double objective_init = 0;   // f(init.dequantize())
  double objective_final = 0;  // f(weight.dequantize())
  int unrepresentable = 0;     // kFromCodes: init codes outside {clamp(b), clamp(b + 1)}
  int64_t changed = 0;         // codes that differ from init's
  bool kept_init = false;      // keep_init_if_better fired: weight is init
};

// W: [rows, cols] the full-precision weight the objective compares against; `init` supplies the
// grid (and zeta) and, for kFromCodes, the starting codes. Z-Fold: either pass W, the original
// objective and init with zeta set, or W' = W diag(1/zeta), H' = diag(zeta) H diag(zeta) and
// init without zeta; both give the same codes up to float rounding.
RoundingResult learn_rounding(const Tensor& W, const Objective& obj, const QuantizedWeight& init,
                              const RoundingOptions& o);

// ---- Building blocks, exposed for the tests and for other solvers. ----

// C[M x N] = A[M x K] B[K x N], row-major, thread-count deterministic (shape-determined tiles,
// each a single-threaded sgemm).
void gemm_nn(const float* A, const float* B, float* C, int64_t M, int64_t N, int64_t K);

// f(W + dW) for the deviation dW = W_hat - W (double accumulation, fixed order).
double objective_value(const Objective& obj, const Tensor& dW);
// df/d(W_hat) at dW: 2 G_h dW_h H_h per head, [rows, cols]. Assumes H_h and G_h symmetric.
Tensor objective_gradient(const Objective& obj, const Tensor& dW);

// The relaxed problem itself: the per-element base codes and steps derived from W and the grid,
// the soft weight W~(a), and the loss with its gradient in a.
class RelaxedRounding {
 public:
  RelaxedRounding(const Tensor& W, const QuantizedWeight& init);

  // Initial a for the chosen mode (see RoundingInit); counts unrepresentable init codes.
  std::vector<float> initial_alpha(RoundingInit mode, float margin, int* unrepresentable) const;
  // W~(a).
  Tensor soft_weight(const std::vector<float>& alpha) const;
  // The hard codes clamp(b + [a >= 0], 0, maxq).
  std::vector<uint8_t> hard_codes(const std::vector<float>& alpha) const;
  // L(a) = f(W~(a)) + lambda * reg (reg only when regularise); grad (resized to rows*cols)
  // receives dL/da. Returns L in double.
  double loss_and_grad(const Objective& obj, const std::vector<float>& alpha, float lambda, float beta,
                       bool regularise, std::vector<float>& grad) const;
  // The same, reusing the buffers of `ws` across calls (learn_rounding's loop).
  struct Workspace {
    std::vector<float> dW, dh, hv, P, tmp;
    std::vector<double> row;
    bool want_loss = true;  // false: the returned value omits the regulariser (saves a pow per element)
  };
  double loss_and_grad(const Objective& obj, const std::vector<float>& alpha, float lambda, float beta,
                       bool regularise, std::vector<float>& grad, Workspace& ws) const;

  int64_t rows() const { return R_; }
  int64_t cols() const { return C_; }
  // Element i = r * cols + c: its base code b (integral; may lie outside [0, maxq]), its step
  // scale * zeta[c], and whether it is free (0 <= b <= maxq - 1 and a finite step > 0). A fixed
  // element's code is clamp(b, 0, maxq) whatever a is (for a step that is not finite and > 0,
  // b is init's code).
  float base(int64_t i) const { return base_[i]; }
  float step(int64_t i) const;
  bool is_free(int64_t i) const { return free_[i] != 0; }

 private:
  Tensor W_;  // shares W's storage
  WeightGrid grid_;
  std::vector<float> zeta_;
  std::vector<uint8_t> init_codes_;
  int64_t R_ = 0, C_ = 0;
  float maxq_ = 0;
  std::vector<float> base_;
  std::vector<uint8_t> free_;
  std::vector<float> step_, zero_;  // per element
  // dW = W~(a) - W; when dh is non-null, dh/da (0 for fixed elements) into dh and h into hv.
  void soft(const std::vector<float>& alpha, float* dW, float* dh, float* hv) const;
};

}  // namespace tquant::wq
