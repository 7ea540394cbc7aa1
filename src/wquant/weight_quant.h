#pragma once
// The shared vocabulary of layer-wise weight quantization (METHODS.md §4, §5 and AdaRound of §2):
// the integer grid a weight matrix is quantized onto, the quantized result, and the quadratic
// objective every solver (RTN, GPTQ/OPTQ, AdaRound, Z-Fold, aespa) minimises.
//
// Conventions (those of the GPTQ/OPTQ reference code, which the papers' baselines use):
//   codes q are unsigned, q in [0, 2^bits - 1]; w_hat = scale * (q - zero) * zeta[col];
//   asymmetric: zero is an integer in [0, 2^bits - 1];
//   symmetric:  zero = 2^(bits - 1) and scale = 2 * max|w| / (2^bits - 1) at clip ratio 1.
// A weight matrix is [rows = out, cols = in] as nn.Linear stores it.
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace tquant::wq {

constexpr int kMinWeightBits = 2;
constexpr int kMaxWeightBits = 8;

struct WeightFormat {
  int bits = 4;
  bool symmetric = false;  // asymmetric is the §4 default
  int64_t group = 0;       // 0: one (scale, zero) per output row; else per row and per `group`
                           // consecutive input columns (must divide cols)
  // fp16 grid: every scale is an IEEE binary16 value and, asymmetric, so is the offset
  // −scale·zero, so that GGUF's Q4_0 / Q4_1 / Q8_0 blocks (fp16 d, and m for Q4_1) hold the grid
  // without rounding (export/gguf_export.h). The grid constructors (grid_search.h) then round
  // each scale to fp16, take the zero point from the rounded scale and, asymmetric, move the
  // scale to the nearest fp16 value s with s·zero an fp16 value (fit_fp16_offset).
  bool fp16 = false;
  int64_t groups_per_row(int64_t cols) const { return group == 0 ? 1 : cols / group; }
  int32_t max_code() const { return (1 << bits) - 1; }
};

// Fails with a message naming `where` when bits are out of 2..8 or the group does not divide cols.
void check_format(const WeightFormat& f, int64_t cols, const char* where);

// fp16 grids. fp16_scale: the nearest binary16 value of a scale s > 0 (ties to even); a scale
// below the smallest positive binary16 becomes it, one beyond the largest finite becomes +inf.
float fp16_scale(float s);
// For an integral zero point z in 0..255 and an fp16 scale s: the fp16 value nearest to s (s
// itself when it qualifies) whose product with z is an fp16 value, searched over the 64 nearest
// binary16 values on each side (one in every 16 consecutive ones qualifies for z <= 15); false
// when none does. s·z is then exact in float32 as well (at most 19 significant bits).
bool fit_fp16_offset(float& s, float z);
// Whether (s, z) is a point of format f's grid as far as the fp16 constraint goes (always true
// when f.fp16 is false).
bool is_fp16_grid_point(const WeightFormat& f, float s, float z);

// One (scale, zero) per row and column group. Groups are contiguous in the ORIGINAL column
// order even under act-order (GPTQ's "static groups"), so the stored format needs no g_idx.
struct WeightGrid {
  WeightFormat format;
  int64_t rows = 0, cols = 0;
  std::vector<float> scale;  // [rows * groups_per_row]
  std::vector<float> zero;   // [rows * groups_per_row], integral values
  int64_t index(int64_t r, int64_t c) const {
    return format.group == 0 ? r : r * (cols / format.group) + c / format.group;
  }
};

// A quantized weight matrix.
struct QuantizedWeight {
  WeightGrid grid;
  std::vector<uint8_t> codes;  // [rows * cols], row-major
  std::vector<float> zeta;     // Z-Fold per-input-column factor [cols], or empty (= 1)
  Tensor dequantize() const;   // [rows, cols]
};

// The quadratic objective f(W_hat) = sum_h tr(G_h * dW_h * H_h * dW_h^T), dW = W_hat - W, where
// the rows are split into `heads` equal consecutive blocks dW_h (one block when both lists have
// at most one entry):
//   OPTQ / AdaRound / out-proj / FFN:  H = {E[X X^T]},           G = {}
//   aespa V (per KV head):             H = {E[(A_h X)(A_h X)^T]}, G = {}
//   aespa Q and K (per head):          H = {E[X X^T]},           G = {E[K_h^T K_h]} / {E[Q_h^T Q_h]}
// H has size cols x cols, each G_h is (rows/heads) x (rows/heads); a missing G_h is the identity.
// All are symmetric positive semi-definite; H is damped before use (prepare_hessian).
struct Objective {
  std::vector<Tensor> H;  // 1 entry, or one per head
  std::vector<Tensor> G;  // empty, or one per head
  int64_t heads() const;  // max(H.size(), G.size(), 1)
  const Tensor& H_of(int64_t head) const { return H.size() == 1 ? H[0] : H[head]; }
  double evaluate(const Tensor& W, const Tensor& W_hat) const;
};

}  // namespace tquant::wq
