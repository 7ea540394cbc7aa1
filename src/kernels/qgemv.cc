#include "kernels/qgemv.h"

#include <algorithm>

#include "core/error.h"

namespace tquant {

SimdLevel packed_matmul_level(const PackedMatrix& w, SimdLevel level) {
  if (w.format != QFormat::Packed) return level;
  // A 32-code chunk must lie inside one group: groups of a multiple of 32, or one per row.
  const bool decodable =
      (w.bits == 2 || w.bits == 3 || w.bits == 4 || w.bits == 8) && (w.group % 32 == 0 || w.group == w.cols);
  return decodable ? level : SimdLevel::Scalar;
}

void packed_matmul(const PackedMatrix& w, const float* x, int64_t tokens, const float* bias, float* y) {
  if (tokens < 0) fail("packed_matmul: negative token count {}", tokens);
  if (tokens == 0 || w.rows == 0) return;
  const SimdLevel level = packed_matmul_level(w, simd_level());
  auto* kernel = level == SimdLevel::AVX512 ? qgemv::matmul_avx512
                 : level == SimdLevel::AVX2 ? qgemv::matmul_avx2
                                            : qgemv::matmul_scalar;
  // Fixed 16-row slices: a multiple of every kernel's row blocking, small enough to balance
  // the threads on a 128-row layer.
  constexpr int64_t kSlice = 16;
  const int64_t slices = (w.rows + kSlice - 1) / kSlice;
#pragma omp parallel for schedule(static)
  for (int64_t s = 0; s < slices; ++s) {
    const int64_t r0 = s * kSlice, r1 = std::min(w.rows, r0 + kSlice);
    kernel(w, x, tokens, r0, r1, y);
    if (bias)
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t r = r0; r < r1; ++r) y[t * w.rows + r] += bias[r];
  }
}

}  // namespace tquant
