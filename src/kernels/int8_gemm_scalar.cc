// The reference for the int8 GEMM kernels: plain integer dot products per group, then the float
// epilogue that every level shares (int8_gemm.h).
#include <cmath>

#include "kernels/int8_gemm.h"

namespace tquant::int8 {

void gemm_scalar(const Int8Activations& a, const Int8Weight& w, int64_t r0, int64_t r1, float* y) {
  const int64_t G = w.groups();
  for (int64_t t = 0; t < a.m; ++t) {
    const uint8_t* at = a.codes.data() + t * a.kp;
    const int64_t p = a.per_row ? t * G : 0;
    for (int64_t r = r0; r < r1; ++r) {
      const int8_t* wr = w.rows.data() + r * w.kp;
      float f = 0.f;
      for (int64_t g = 0; g < G; ++g) {
        int32_t acc = 0;
        for (int64_t j = w.group_begin[g]; j < w.group_begin[g + 1]; ++j) acc += int32_t{at[j]} * int32_t{wr[j]};
        const int32_t centred = acc - a.offset[p + g] * w.row_sum[g * w.np + r];
        f = std::fma(a.scale[p + g], static_cast<float>(centred), f);
      }
      y[t * w.n + r] = w.scale[r] * f;
    }
  }
}

}  // namespace tquant::int8
