#pragma once
// A fake quantizer whose scale and zero point are trained: LSQ (Esser et al. 2020) for the scale
// and LSQ+ (Bhalgat et al. 2020) for the zero point, with the straight-through estimator (STE)
// for the rounding. The forward is fake_quantize() with the zero point rounded, so trained
// parameters evaluate in `tquant eval` exactly as in training:
//   x̂ = s (clamp(round(x/s) + ẑ, qmin, qmax) − ẑ),   ẑ = clamp(round(z), qmin, qmax)
// With u = x/s + ẑ and q = clamp(round(u)), the backward is
//   inside the grid (qmin <= round(u) <= qmax):  dx = dx̂,  ds += g·dx̂·(round(u) − u),  dz += 0
//   clamped:                                       dx = 0,   ds += g·dx̂·(q − ẑ),        dz += −g·dx̂·s
// (the STE passes d/dz through the rounding of z). g = 1/sqrt(n·qmax) is LSQ's gradient scale, n
// the group's elements in the batch (METHODS.md §3). Per-token quantizers have no parameters:
// their range follows the data, and the backward is the identity.
#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "quant/quant_params.h"

namespace tquant::train {

struct LearnedQuantizer {
  std::string name;   // the point ("layers.0.attn.scores") or the weight ("layers.0.attn.q_proj.weight")
  QuantParams spec;   // bits, symmetric and grouping; its scale/zero_point are the initial values
  Tensor scale;       // [groups], trained
  Tensor zero_point;  // [groups], trained (empty when symmetric: the zero point stays 0)
  bool learn = true;  // false: the backward still applies the STE mask but leaves s and z alone

  static LearnedQuantizer from_params(std::string name, const QuantParams& p, bool learn);
  // The current parameters, with each zero point rounded and clamped into the code range.
  QuantParams params() const;
  bool dynamic() const;  // per-token
  // Keeps the parameters valid after an optimizer step: s >= a tiny positive floor, z within
  // the code range.
  void constrain();
};

// x̂ in place: exactly fake_quantize(x, q.params()).
void learned_quantize_forward(const LearnedQuantizer& q, float* x, int64_t rows, int64_t cols);

// dy (the gradient of x̂) becomes that of x, given the quantizer's input x; the scale and zero
// point gradients are added into dscale / dzero ([groups] each; dzero may be null). Sums run in
// a fixed order, so results do not depend on the thread count.
void learned_quantize_backward(const LearnedQuantizer& q, const float* x, int64_t rows, int64_t cols, float* dy,
                               float* dscale, float* dzero);

// The same, one element at a time with no parallelism: the reference the test compares against.
void learned_quantize_backward_ref(const LearnedQuantizer& q, const float* x, int64_t rows, int64_t cols, float* dy,
                                   float* dscale, float* dzero);

}  // namespace tquant::train
