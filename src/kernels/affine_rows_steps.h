#pragma once
// affine_rows.h's loops as code, written once. Each level's file includes this inside its target
// region so that GCC vectorises the same source for that ISA; src/kernels is compiled with
// -ffp-contract=off, so no level fuses s · (q − z) or anything else into an FMA.
//
// Internal linkage on purpose (see vexp_steps.h): a shared inline copy could be one the linker
// takes from an AVX-512 file. quant/affine_fast.h must be included before the target region; its
// quantize_code_fast is inlined here.
#include <cstdint>

namespace tquant::affine_rows {
namespace {

int fake_uniform_steps(float* x, int64_t n, float s, float z, float qmin, float qmax) {
  int nan = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float xi = x[i];
    nan |= xi != xi;
    x[i] = s * (quantize_code_fast(xi, s, z, qmin, qmax) - z);
  }
  return nan;
}

int fake_columns_steps(float* x, int64_t n, const float* s, const float* z, float qmin, float qmax) {
  int nan = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float xi = x[i];
    nan |= xi != xi;
    x[i] = s[i] * (quantize_code_fast(xi, s[i], z[i], qmin, qmax) - z[i]);
  }
  return nan;
}

// x / s lies within a few ulps of the integer q − z for any x that s · (q − z) produced, so the
// rounding recovers q exactly; comparing s · (q − z) with x (as floats: −0 equals +0, NaN equals
// nothing) tells whether x was on the grid. NaN codes are replaced before the conversion to int,
// which C++ leaves undefined for them.
int recover_codes_steps(const float* x, uint8_t* out, int64_t n, float s, float z, float qmin, float qmax,
                        float shift) {
  int off_grid = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float xi = x[i];
    float q = quantize_code_fast(xi, s, z, qmin, qmax);
    off_grid |= !(s * (q - z) == xi);
    q = q == q ? q : qmin;
    out[i] = static_cast<uint8_t>(static_cast<int32_t>(q + shift));
  }
  return off_grid;
}

}  // namespace
}  // namespace tquant::affine_rows
