#pragma once
// The vectorisable form of quantize_code_ref (affine.h), shared by the kernels that must agree
// with it bit for bit: fake_quant.cc, the MSE search (sorted_sample.cc) and the cross-entropy
// loss (cross_entropy_loss.cc).
namespace tquant {

// Rounding half to even without calling nearbyint, so loops vectorise on baseline x86-64 (SSE2
// has no round instruction). For |v| < 2^22, v + 1.5·2^23 lies in (2^23, 2^24) where the floats
// are exactly the integers, so the addition itself rounds to nearest, ties to even (1.5·2^23 is
// even); subtracting the constant back is exact. For larger |v| the result is not round(v), but
// both additions are monotone in v, so v >= 2^22 still gives >= 2^22 (and ±inf gives ±inf):
// with |z| <= 2^20 (validate() enforces it) and |qmin|, qmax <= 2^16 such values saturate to
// qmax or qmin exactly as round(v) would. NaN stays NaN. This needs strict IEEE evaluation,
// which the build has (no -ffast-math).
//
// Why no explicit pre-clamp of v: GCC sinks the constant addition into the branches of a clamp
// placed before it, and under -ftrapping-math it then refuses to if-convert, so the loop does
// not vectorise.
inline constexpr float kRoundMagic = 12582912.f;  // 1.5 * 2^23

// q = clamp(round(x / s) + z, qmin, qmax) — identical to quantize_code_ref for non-NaN x.
inline float quantize_code_fast(float x, float s, float z, float qmin, float qmax) {
  const float v = x / s;  // a true division, as the reference: x * (1/s) can round differently
  float q = ((v + kRoundMagic) - kRoundMagic) + z;
  q = q < qmin ? qmin : q;
  q = q > qmax ? qmax : q;
  return q;
}

}  // namespace tquant
