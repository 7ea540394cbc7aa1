#include "wquant/hessian.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "wquant/serial_blas.h"

namespace tquant::wq {

namespace {

void check_square(const Tensor& H, int64_t n, const char* where) {
  if (H.ndim() != 2 || H.dim(0) != n || H.dim(1) != n)
    fail("{}: H has shape {}, expected [{}, {}]", where, shape_str(H.shape()), n, n);
}

}  // namespace

void accumulate_xtx(Tensor& H, const float* X, int64_t rows, int64_t cols, float weight, int64_t ld) {
  check_square(H, cols, "accumulate_xtx");
  if (ld == 0) ld = cols;
  if (ld < cols) fail("accumulate_xtx: row stride {} is below the {} columns", ld, cols);
  if (rows < 0) fail("accumulate_xtx: {} rows", rows);
  if (rows == 0 || cols == 0) return;
  float* h = H.data();
  // Block row t of the upper triangle: the diagonal block by syrk, the part right of it by gemm.
  // 256 columns keep the packing overhead small and still give 16 blocks at cols = 4096; dynamic
  // scheduling evens out the blocks' unequal widths.
  constexpr int64_t kBlock = 256;
  const int64_t blocks = (cols + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(dynamic, 1) if (blocks > 1)
  for (int64_t t = 0; t < blocks; ++t) {
    SerialBlas serial;  // each block's BLAS calls on one thread, whether or not the team is active
    const int64_t c0 = t * kBlock, n = std::min(kBlock, cols - c0), right = cols - c0 - n;
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, n, rows, weight, X + c0, ld, 1.f, h + c0 * cols + c0, cols);
    if (right > 0)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, right, rows, weight, X + c0, ld, X + c0 + n, ld, 1.f,
                  h + c0 * cols + c0 + n, cols);
  }
  // syrk leaves the lower triangle alone; consumers (GEMMs with H, the objective) read both.
#pragma omp parallel for schedule(static) if (cols >= 256)
  for (int64_t i = 1; i < cols; ++i)
    for (int64_t j = 0; j < i; ++j) h[i * cols + j] = h[j * cols + i];
}

HessianReport prepare_hessian(Tensor& H, Tensor& W, double percdamp) {
  if (W.ndim() != 2) fail("prepare_hessian: W has shape {}, expected [rows, cols]", shape_str(W.shape()));
  const int64_t R = W.dim(0), C = W.dim(1);
  check_square(H, C, "prepare_hessian");
  if (!(percdamp >= 0) || !std::isfinite(percdamp)) fail("prepare_hessian: damping {} is not >= 0", percdamp);
  HessianReport report;
  float* h = H.data();
  float* w = W.data();
  double diag_sum = 0;
  for (int64_t j = 0; j < C; ++j) {
    float& d = h[j * C + j];
    if (!std::isfinite(d) || d < 0.f)
      fail("prepare_hessian: H[{}][{}] = {} is not a finite non-negative value; H must be positive "
           "semi-definite", j, j, d);
    if (d == 0.f) {
      d = 1.f;
      for (int64_t r = 0; r < R; ++r) w[r * C + j] = 0.f;
      ++report.dead_inputs;
    }
    diag_sum += d;
  }
  if (C == 0) return report;
  report.damp = static_cast<float>(percdamp * diag_sum / static_cast<double>(C));
  for (int64_t j = 0; j < C; ++j) h[j * C + j] += report.damp;
  return report;
}

}  // namespace tquant::wq
