#include "kernels/gemm.h"

#include <cblas.h>

#include <algorithm>

namespace tquant {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  constexpr int64_t kMaxTiles = 4, kMinTile = 64;
  auto tiling = [&](int64_t n) {
    const int64_t tiles = std::clamp<int64_t>(n / kMinTile, 1, kMaxTiles);
    return (n + tiles - 1) / tiles;
  };
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  if (M >= 2 * kMinTile) {
    const int64_t tile = tiling(M), tiles = (M + tile - 1) / tile;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t r0 = t * tile, m = std::min(tile, M - r0);
      const float* a = trans_a ? A + r0 : A + r0 * lda;
      cblas_sgemm(CblasRowMajor, ta, tb, m, N, K, alpha, a, lda, B, ldb, beta, C + r0 * ldc, ldc);
    }
  } else {
    const int64_t tile = tiling(N), tiles = (N + tile - 1) / tile;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t c0 = t * tile, n = std::min(tile, N - c0);
      const float* b = trans_b ? B + c0 * ldb : B + c0;
      cblas_sgemm(CblasRowMajor, ta, tb, M, n, K, alpha, A, lda, b, ldb, beta, C + c0, ldc);
    }
  }
}

}  // namespace tquant
