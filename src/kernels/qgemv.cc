#include "kernels/qgemv.h"

#include "core/error.h"
#include "kernels/packed_row_slices.h"

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
  for_row_slices(w.rows, tokens, bias, y, [&](int64_t r0, int64_t r1) { kernel(w, x, tokens, r0, r1, y); });
}

}  // namespace tquant
