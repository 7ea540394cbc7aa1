#pragma once
// A linear layer run as W8A8 (tquant eval --real-int8): int8 weight codes in the GEMM's layout
// and the quantizer of the layer's input, from which the integer codes of an input that is
// already on that quantizer's grid are recovered exactly (activations are quantized where they
// are produced, by the hook at the producing point; see quant/real_int8.h).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/int8_gemm.h"

namespace tquant {

// Per-token scales are computed at run time from the unquantized activation; the hook that
// quantizes the producing point records them here for the linears that consume it.
struct PerTokenRecord {
  const float* data = nullptr;  // the activation buffer they belong to
  int64_t rows = 0, cols = 0;
  std::vector<float> scale, zero;  // [rows]
};

struct Int8Linear {
  Int8Weight weight;
  std::string input_point;  // the hook point whose quantizer produced the input
  int input_bits = 8;
  bool input_symmetric = false;
  // Static input quantizers (per tensor: one group; PEG: one per group of the weight's layout).
  std::vector<float> group_scale, group_zero;
  // Per-token input quantizers: filled by the producing hook; null for static ones.
  std::shared_ptr<PerTokenRecord> per_token;
};

// y [rows, out] = the layer applied to x [rows, in] (+ bias). Fails, naming `layer` and the point,
// when x is not on the input quantizer's grid (some other change came between the producing
// hook and the layer) or the per-token record does not belong to x.
void int8_linear_forward(const Int8Linear& l, const float* x, int64_t rows, int64_t cols, const float* bias, float* y,
                         const std::string& layer);

// The codes of x in the weight's stored column order, with their scales and offsets.
Int8Activations int8_input_codes(const Int8Linear& l, const float* x, int64_t rows, int64_t cols,
                                 const std::string& layer);

}  // namespace tquant
