#include "wquant/cholesky.h"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "core/error.h"
#include "wquant/serial_blas.h"

namespace tquant::wq {

// Right-looking blocked Cholesky: factor the diagonal block, solve the panel below it, update the
// trailing lower triangle. Panel rows and trailing tiles are independent within a step, so each
// step runs them in parallel; the steps themselves are sequential.
int cholesky_lower(float* a, int64_t n, int64_t block) {
  if (block < 1) fail("cholesky_lower: block size {} is not >= 1", block);
  for (int64_t k0 = 0; k0 < n; k0 += block) {
    const int64_t kb = std::min(block, n - k0);
    float* akk = a + k0 * n + k0;
    int info;
    {
      SerialBlas serial;
      // Column-major 'U' on a row-major array is its lower triangle: a_kk = L_kk L_kkᵀ.
      info = LAPACKE_spotrf(LAPACK_COL_MAJOR, 'U', kb, akk, n);
    }
    if (info < 0) fail("cholesky_lower: LAPACK rejected argument {}", -info);
    if (info > 0) return static_cast<int>(k0) + info;
    const int64_t r0 = k0 + kb, rest = n - r0;
    if (rest == 0) break;
    const int64_t tiles = (rest + block - 1) / block;

    // Panel: L[r0:, k0:r0] = A[r0:, k0:r0] · L_kk⁻ᵀ.
#pragma omp parallel for schedule(dynamic, 1) if (tiles > 1)
    for (int64_t t = 0; t < tiles; ++t) {
      SerialBlas serial;
      const int64_t i0 = r0 + t * block, m = std::min(block, n - i0);
      cblas_strsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, m, kb, 1.f, akk, n,
                  a + i0 * n + k0, n);
    }

    // Trailing lower triangle: A[r0:, r0:] -= P Pᵀ with P the panel, tile pair (ti >= tj) by pair.
    std::vector<std::pair<int64_t, int64_t>> pairs;
    for (int64_t ti = 0; ti < tiles; ++ti)
      for (int64_t tj = 0; tj <= ti; ++tj) pairs.emplace_back(ti, tj);
    const int64_t np = static_cast<int64_t>(pairs.size());
#pragma omp parallel for schedule(dynamic, 1) if (np > 1)
    for (int64_t p = 0; p < np; ++p) {
      SerialBlas serial;
      const auto [ti, tj] = pairs[p];
      const int64_t i0 = r0 + ti * block, mi = std::min(block, n - i0);
      const int64_t j0 = r0 + tj * block, mj = std::min(block, n - j0);
      if (ti == tj)
        cblas_ssyrk(CblasRowMajor, CblasLower, CblasNoTrans, mi, kb, -1.f, a + i0 * n + k0, n, 1.f, a + i0 * n + i0, n);
      else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mi, mj, kb, -1.f, a + i0 * n + k0, n, a + j0 * n + k0, n,
                    1.f, a + i0 * n + j0, n);
    }
  }
  return 0;
}

// Column block j of L⁻¹ solves L X_j = E_j (the identity's columns); X_j is zero above row j0,
// so only L[j0:, j0:] takes part: (n - j0)² · width FLOPs, n³/3 in all, like strtri.
void invert_lower(const float* L, int64_t n, float* x, int64_t block) {
  if (block < 1) fail("invert_lower: block size {} is not >= 1", block);
  const int64_t blocks = (n + block - 1) / block;
#pragma omp parallel for schedule(static) if (n * n >= (1 << 16))
  for (int64_t r = 0; r < n; ++r) std::fill(x + r * n, x + (r + 1) * n, 0.f);
  // Dynamic and in index order: the widest solves (small j0) start first.
#pragma omp parallel for schedule(dynamic, 1) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    SerialBlas serial;
    const int64_t j0 = b * block, jb = std::min(block, n - j0);
    for (int64_t t = 0; t < jb; ++t) x[(j0 + t) * n + j0 + t] = 1.f;
    cblas_strsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, n - j0, jb, 1.f, L + j0 * n + j0, n,
                x + j0 * n + j0, n);
  }
}

}  // namespace tquant::wq
