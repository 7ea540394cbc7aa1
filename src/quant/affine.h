#pragma once
// The uniform affine quantizer of METHODS.md §1 for one value: the plain scalar reference that
// every optimised kernel in src/quant is tested against, bit for bit.
//
// Rounding is std::nearbyint, which rounds half to even under the default floating-point
// rounding mode (FE_TONEAREST, which tquant never changes) — the same as torch.round, so ties
// such as x/s = 2.5 go to 2 and 3.5 to 4, matching the PyTorch reference code of the papers.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string_view>

namespace tquant {

constexpr int kMinBits = 2;
constexpr int kMaxBits = 16;
void check_bits(int bits, std::string_view where);

// Integer code range: symmetric is signed [-2^(b-1), 2^(b-1) - 1], asymmetric is [0, 2^b - 1].
inline int32_t code_min(int bits, bool symmetric) { return symmetric ? -(1 << (bits - 1)) : 0; }
inline int32_t code_max(int bits, bool symmetric) {
  return symmetric ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
}

// A clipping range [lo, hi] as range estimators produce it.
struct Range {
  float lo = 0.f;
  float hi = 0.f;
};

struct ScaleZero {
  float scale = 1.f;
  float zero_point = 0.f;  // always 0 for symmetric
};

// A zero range (all-zero data) would give s = 0 and x/s = NaN. We use the smallest normal float
// instead: zeros still map to code z and back to exactly 0, and anything else saturates to a
// value within 65535·FLT_MIN of zero, which honours the calibrated range [0, 0]. The same guard
// catches a non-zero range so small that its scale underflows.
constexpr float kZeroRangeScale = 1.17549435e-38f;  // FLT_MIN

// Range -> (scale, zero point), computed in float as the PyTorch references do.
//   asymmetric: lo = min(lo, 0), hi = max(hi, 0); s = (hi - lo) / (2^b - 1);
//               z = clamp(round(-lo / s), 0, 2^b - 1)
//   symmetric:  s = max(|lo|, |hi|) / (2^(b-1) - 1); z = 0
// Forcing 0 into the range makes 0 exactly representable (padding, ReLU zeros) and gives a
// constant non-zero tensor a non-zero range. lo and hi must be finite with lo <= hi.
ScaleZero scale_zero_from_range(Range r, int bits, bool symmetric, std::string_view where);

// q = clamp(round(x / s) + z, qmin, qmax), as a float (z may be fractional once learnt).
inline float quantize_code_ref(float x, float s, float z, float qmin, float qmax) {
  const float q = std::nearbyint(x / s) + z;
  return std::clamp(q, qmin, qmax);
}

// x̂ = s (q - z).
inline float dequantize_code_ref(float q, float s, float z) { return s * (q - z); }

inline float fake_quantize_ref(float x, float s, float z, float qmin, float qmax) {
  return dequantize_code_ref(quantize_code_ref(x, s, z, qmin, qmax), s, z);
}

}  // namespace tquant
