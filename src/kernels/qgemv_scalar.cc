// The reference the SIMD kernels are tested against: one row at a time, decoded with
// PackedMatrix::weight (the dequantizers' arithmetic), summed left to right.
#include <vector>

#include "kernels/qgemv.h"

namespace tquant::qgemv {

void matmul_scalar(const PackedMatrix& w, const float* x, int64_t tokens, int64_t r0, int64_t r1, float* y) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t r = r0; r < r1; ++r) {
    w.dequantize_row(r, row.data());
    for (int64_t t = 0; t < tokens; ++t) {
      const float* xt = x + t * w.cols;
      float s = 0.f;
      for (int64_t c = 0; c < w.cols; ++c) s += row[c] * xt[c];
      y[t * w.rows + r] = s;
    }
  }
}

}  // namespace tquant::qgemv
