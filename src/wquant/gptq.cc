#include "wquant/gptq.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "quant/affine_fast.h"
#include "wquant/cholesky.h"
#include "wquant/grid_search.h"
#include "wquant/serial_blas.h"

namespace tquant::wq {

namespace {

// Rows are independent in GPTQ (U is shared, read-only), so each chunk of rows runs the whole
// column sweep on its own: no barrier per block, and every chunk's arithmetic — including its
// sgemm shapes — is fixed by the problem's shape, not by the thread count. 256 rows keep a
// chunk's block of 128 columns (128 KiB) in L2 during the column loop and make the lazy-update
// sgemm wide enough to run near peak.
constexpr int64_t kRowChunk = 256;
// Below this many elements a copy loop is not worth waking the thread team.
constexpr int64_t kParallelCopy = 1 << 16;

// U, upper triangular with H⁻¹ = Uᵀ U, as the reference gets it from
// torch.linalg.cholesky(cholesky_inverse(cholesky(H)), upper=True) — but with one factorisation
// and one triangular inverse instead of three n³ steps. With J the order reversal and
// J H J = L Lᵀ (Cholesky), H = M Mᵀ for the upper triangular M = J L J, so H⁻¹ = (M⁻¹)ᵀ M⁻¹ and,
// the Cholesky factor being unique, U = M⁻¹ = J L⁻¹ J: 2n³/3 FLOPs instead of 4n³/3, and no
// explicit inverse of H to lose accuracy in.
//
// `a` must hold J H J (row-major; the caller reverses while permuting); on success it holds U.
// `x` is scratch of n² floats. Returns 0 or the index of the first non-positive pivot.
int upper_cholesky_of_inverse_reversed(float* a, int64_t n, std::vector<float>& x) {
  const int info = cholesky_lower(a, n);
  if (info != 0) return info;
  x.resize(static_cast<size_t>(n * n));
  invert_lower(a, n, x.data());
  // U[r][c] = L⁻¹[n-1-r][n-1-c]: the flat array reversed.
  const int64_t nn = n * n;
  const float* xs = x.data();
#pragma omp parallel for schedule(static) if (nn >= kParallelCopy)
  for (int64_t k = 0; k < nn; ++k) a[k] = xs[nn - 1 - k];
  return 0;
}

// dst [cols, rows] = src [rows, cols]ᵀ, in 64×64 tiles so both sides stream through the cache.
template <class T>
void transpose(const T* src, int64_t rows, int64_t cols, T* dst) {
  constexpr int64_t kTile = 64;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelCopy)
  for (int64_t r0 = 0; r0 < rows; r0 += kTile)
    for (int64_t c0 = 0; c0 < cols; c0 += kTile)
      for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) dst[c * rows + r] = src[r * cols + c];
}

void check_finite(const Tensor& t, const char* name) {
  for (int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(t[i])) fail("gptq: {} has a non-finite value at flat index {}", name, i);
}

}  // namespace

QuantizedWeight gptq(const Tensor& W, const Tensor& H, const WeightGrid& grid, const GptqOptions& o,
                     GptqReport* report) {
  check_grid(grid, W, "gptq");
  const int64_t R = W.dim(0), C = W.dim(1);
  if (H.ndim() != 2 || H.dim(0) != C || H.dim(1) != C)
    fail("gptq: H has shape {}, expected [{}, {}]", shape_str(H.shape()), C, C);
  if (o.block < 1) fail("gptq: block size {} is not >= 1", o.block);
  check_finite(W, "W");
  check_finite(H, "H");
  GptqReport rep;
  QuantizedWeight out;
  out.grid = grid;
  out.codes.assign(static_cast<size_t>(R * C), 0);
  if (R == 0 || C == 0) {
    if (report) *report = rep;
    return out;
  }

  // Column order: act-order puts the inputs with the largest diag H (the largest expected
  // activations) first, while the most columns are left to absorb their error.
  std::vector<int64_t> perm(static_cast<size_t>(C));
  std::iota(perm.begin(), perm.end(), 0);
  if (o.act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return H[a * C + a] > H[b * C + b]; });

  // U from the permuted H (reversed for the factorisation, see above); retried with more
  // damping when H is not positive definite.
  Tensor U = Tensor::uninitialized({C, C});
  float* u = U.data();
  double mean_diag = 0;
  for (int64_t j = 0; j < C; ++j) mean_diag += H[j * C + j];
  mean_diag /= static_cast<double>(C);
  constexpr int kRetries = 3;
  std::vector<float> scratch;
  for (int attempt = 0;; ++attempt) {
#pragma omp parallel for schedule(static) if (C * C >= kParallelCopy)
    for (int64_t i = 0; i < C; ++i)  // the lower triangle is all the factorisation reads
      for (int64_t j = 0; j <= i; ++j) u[i * C + j] = H[perm[C - 1 - i] * C + perm[C - 1 - j]];
    for (int64_t i = 0; i < C; ++i) u[i * C + i] += rep.extra_damp;
    const int info = upper_cholesky_of_inverse_reversed(u, C, scratch);
    if (info == 0) break;
    if (attempt == kRetries || !(mean_diag > 0))
      fail("gptq: H ({} x {}) is not positive definite (the Cholesky factorisation fails at input {}), even "
           "after adding {} to its diagonal; use more damping or check the calibration statistics",
           C, C, perm[C - info], rep.extra_damp);
    rep.damping_retries = attempt + 1;
    rep.extra_damp = static_cast<float>(0.01 * std::pow(10.0, attempt) * mean_diag);
  }

  // Working copy, transposed to [cols, rows] in processing order, so that the column being
  // quantized and the columns being updated are contiguous runs over rows.
  std::vector<float> Wt(static_cast<size_t>(C * R));
  {
    std::vector<float> Wp(static_cast<size_t>(R * C));
    const float* w = W.data();
#pragma omp parallel for schedule(static) if (R * C >= kParallelCopy)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t i = 0; i < C; ++i) Wp[r * C + i] = w[r * C + perm[i]];
    transpose(Wp.data(), R, C, Wt.data());
  }
  // Grid transposed to [groups, rows] for the same reason; column i uses group group_of[i].
  const int64_t G = grid.format.groups_per_row(C);
  std::vector<float> st(static_cast<size_t>(G * R)), zt(st.size());
  transpose(grid.scale.data(), R, G, st.data());
  transpose(grid.zero.data(), R, G, zt.data());
  std::vector<int64_t> group_of(static_cast<size_t>(C));
  for (int64_t i = 0; i < C; ++i) group_of[i] = grid.format.group == 0 ? 0 : perm[i] / grid.format.group;

  const float maxq = static_cast<float>(grid.format.max_code());
  const int64_t bs = std::min(o.block, C), chunks = (R + kRowChunk - 1) / kRowChunk;
  std::vector<uint8_t> Qt(static_cast<size_t>(C * R));
  float* wt = Wt.data();
#pragma omp parallel for schedule(dynamic, 1) if (chunks > 1)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    SerialBlas serial;  // one thread per chunk's sgemm, whether or not the team is active
    const int64_t r0 = ch * kRowChunk, m = std::min(kRowChunk, R - r0);
    std::vector<float> E(static_cast<size_t>(bs * m));  // the block's scaled errors, [block, m]
    for (int64_t i1 = 0; i1 < C; i1 += bs) {
      const int64_t i2 = std::min(i1 + bs, C);
      for (int64_t i = i1; i < i2; ++i) {
        float* wi = wt + i * R + r0;
        const float* s = st.data() + group_of[i] * R + r0;
        const float* z = zt.data() + group_of[i] * R + r0;
        uint8_t* q = Qt.data() + i * R + r0;
        float* e = E.data() + (i - i1) * m;
        const float d = u[i * C + i];
        for (int64_t r = 0; r < m; ++r) {
          const float code = quantize_code_fast(wi[r], s[r], z[r], 0.f, maxq);
          q[r] = static_cast<uint8_t>(code);
          e[r] = (wi[r] - s[r] * (code - z[r])) / d;
        }
        for (int64_t j = i + 1; j < i2; ++j) {
          const float uij = u[i * C + j];
          float* wj = wt + j * R + r0;
          for (int64_t r = 0; r < m; ++r) wj[r] -= e[r] * uij;
        }
      }
      // Lazy update of every later column: Wtᵀ[i2:, chunk] -= U[i1:i2, i2:]ᵀ · E.
      if (i2 < C)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C - i2, m, i2 - i1, -1.f, u + i1 * C + i2, C, E.data(),
                    m, 1.f, wt + i2 * R + r0, R);
    }
  }

  // Codes back to [rows, cols] in the original column order.
  std::vector<uint8_t> Qp(static_cast<size_t>(R * C));
  transpose(Qt.data(), C, R, Qp.data());
  uint8_t* codes = out.codes.data();
#pragma omp parallel for schedule(static) if (R * C >= kParallelCopy)
  for (int64_t r = 0; r < R; ++r)
    for (int64_t i = 0; i < C; ++i) codes[r * C + perm[i]] = Qp[r * C + i];
  if (report) *report = rep;
  return out;
}

}  // namespace tquant::wq
