#pragma once
// The element loops of the affine quantizer, at every SIMD level: fake quantization of a run of
// values (quant/fake_quant.cc, every activation hook) and the recovery of integer codes from values
// that must already lie on a quantizer's grid (the W8A8 linear's input, kernels/int8_linear.cc).
//
// One source (affine_rows_steps.h) is compiled for each level and vectorised by the compiler.
// Each element takes the same IEEE operations in the same order at every level (a true division
// x / s, the round-to-nearest-even of quant/affine_fast.h, compares, one multiply; no fused
// multiply-add), so every level equals the scalar one bit for bit, and both equal
// quantize_code_ref / fake_quantize_ref of quant/affine.h for every non-NaN input.
#include <cstdint>

namespace tquant::affine_rows {

struct Kernels {
  // x[i] = s · (clamp(round(x[i] / s) + z, qmin, qmax) − z); returns 1 if some x[i] was NaN (it
  // stays NaN, so the caller can find it), else 0.
  int (*fake_uniform)(float* x, int64_t n, float s, float z, float qmin, float qmax);
  // The same with a scale and zero point per element.
  int (*fake_columns)(float* x, int64_t n, const float* s, const float* z, float qmin, float qmax);
  // out[i] = q + shift for q = clamp(round(x[i] / s) + z, qmin, qmax), where every x[i] should be
  // s · (q − z) already (what fake_uniform wrote). Returns 1 if some x[i] is not (a NaN is not),
  // else 0; out is then partly meaningless.
  int (*recover_codes)(const float* x, uint8_t* out, int64_t n, float s, float z, float qmin, float qmax,
                       float shift);
};

extern const Kernels kScalar, kAvx2, kAvx512;

// The kernels of simd_level().
const Kernels& kernels();

}  // namespace tquant::affine_rows
