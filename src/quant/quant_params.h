#pragma once
// The parameters of one quantizer: bit width, symmetry, granularity and one (scale, zero point)
// per group. Scale and zero point are plain floats so that QAT (LSQ+) can later learn them; the
// estimators in this directory always produce integral zero points.
#include <cstdint>
#include <string_view>
#include <vector>

#include "quant/affine.h"
#include "quant/grouping.h"

namespace tquant {

struct QuantParams {
  int bits = 8;
  bool symmetric = false;
  Grouping grouping;
  std::vector<float> scale;       // one per group (empty for PerToken: computed at run time)
  std::vector<float> zero_point;  // one per group; 0 for symmetric

  int32_t qmin() const { return code_min(bits, symmetric); }
  int32_t qmax() const { return code_max(bits, symmetric); }
  int64_t groups() const { return static_cast<int64_t>(scale.size()); }
};

// Zero points beyond this magnitude are rejected: no b <= 16 quantizer needs them, and the
// optimised kernels rely on the bound to round without calling nearbyint (see affine_fast.h).
constexpr float kMaxZeroPoint = 1 << 20;

// Checks bits, the grouping's own fields, scale/zero sizes and values (scale finite and > 0,
// zero point finite, within ±kMaxZeroPoint, 0 when symmetric). Shape-independent.
void validate(const QuantParams& p, std::string_view where);

// validate() plus: the parameters fit a [rows, cols] tensor.
void check_fits(const QuantParams& p, int64_t rows, int64_t cols, std::string_view where);

// Parameters from one clipping range per group (scale_zero_from_range on each).
QuantParams params_from_ranges(int bits, bool symmetric, Grouping grouping,
                               const std::vector<Range>& ranges, std::string_view where);

// Parameters for per-token (dynamic) quantization of this particular tensor: each row's min/max
// range, returned as per_channel(0) parameters. fake_quantize does this itself for PerToken;
// callers that want the integer codes of a per-token tensor call it, then quantize().
QuantParams per_token_params(const float* x, int64_t rows, int64_t cols, int bits, bool symmetric,
                             std::string_view where);

}  // namespace tquant
