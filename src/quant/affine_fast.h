#pragma once
// The vectorisable form of quantize_code_ref (affine.h), shared by the kernels that must agree
// with it bit for bit: fake_quant.cc and the MSE search (sorted_sample.cc).
namespace tquant {

// Rounds half to even without calling nearbyint, so loops vectorise on baseline x86-64 (SSE2 has
// no round instruction). For |v| <= 2^22, v + 1.5·2^23 lies in [2^23, 2^24) where the floats are
// exactly the integers, so the addition itself rounds to nearest-even; subtracting the constant
// back is exact. This needs strict IEEE evaluation, which the build has (no -ffast-math).
inline constexpr float kRoundMagic = 12582912.f;  // 1.5 * 2^23
// Pre-clamp of x/s into the exact domain of the trick. It cannot change a result: validate()
// bounds |z| by 2^20 and |qmin|, qmax <= 2^16, so any |x/s| >= 2^22 saturates to qmin or qmax
// either way. ±inf (x = ±inf, or a huge x over a tiny s) saturates too; NaN stays NaN.
inline constexpr float kPreClamp = 4194304.f;  // 2^22

// q = clamp(round(x / s) + z, qmin, qmax) — identical to quantize_code_ref for non-NaN x.
inline float quantize_code_fast(float x, float s, float z, float qmin, float qmax) {
  float v = x / s;  // a true division, as the reference: x * (1/s) can round differently at ties
  v = v < -kPreClamp ? -kPreClamp : v;
  v = v > kPreClamp ? kPreClamp : v;
  float q = ((v + kRoundMagic) - kRoundMagic) + z;
  q = q < qmin ? qmin : q;
  q = q > qmax ? qmax : q;
  return q;
}

}  // namespace tquant
