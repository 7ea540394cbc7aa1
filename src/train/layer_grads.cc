#include "train/layer_grads.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/counter_rng.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"

namespace tquant::train {

void add_column_sums(const float* a, int64_t rows, int64_t cols, float* out) {
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (cols + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * kBlock, n = std::min(kBlock, cols - c0);
    double acc[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const float* ar = a + r * cols + c0;
      for (int64_t j = 0; j < n; ++j) acc[j] += ar[j];
    }
    for (int64_t j = 0; j < n; ++j) out[c0 + j] += static_cast<float>(acc[j]);
  }
}

void embedding_backward(const int32_t* index, int64_t rows, int64_t d, const float* dy, float* dtable) {
  // Rows sharing an index add up in row order: each thread owns a block of columns.
  constexpr int64_t kBlock = 32;
  const int64_t blocks = (d + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * kBlock, n = std::min(kBlock, d - c0);
    for (int64_t r = 0; r < rows; ++r) {
      float* t = dtable + int64_t{index[r]} * d + c0;
      const float* g = dy + r * d + c0;
      for (int64_t j = 0; j < n; ++j) t[j] += g[j];
    }
  }
}

void linear_backward(const float* x, int64_t rows, int64_t in, const float* w, int64_t out, const float* dy,
                     float* dx, bool accumulate_dx, float* dw, float* db) {
  if (rows == 0) return;
  if (dx) gemm(false, false, rows, in, out, 1.f, dy, out, w, in, accumulate_dx ? 1.f : 0.f, dx, in);
  if (dw) gemm(true, false, out, in, rows, 1.f, dy, out, x, in, 1.f, dw, in);
  if (db) add_column_sums(dy, rows, out, db);
}

void layer_norm_backward(const float* x, const float* mean, const float* rstd, int64_t rows, int64_t d,
                         const float* gamma, const float* dy, float* dx, bool accumulate_dx, float* dgamma,
                         float* dbeta) {
  std::vector<float> dy_xhat(rows * d);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    const float* g = dy + r * d;
    float* p = dy_xhat.data() + r * d;
    const float m = mean[r], s = rstd[r];
    double sum_dxhat = 0, sum_dxhat_xhat = 0;
    for (int64_t j = 0; j < d; ++j) {
      const float xhat = (xr[j] - m) * s;
      const float dxhat = g[j] * gamma[j];
      p[j] = g[j] * xhat;
      sum_dxhat += dxhat;
      sum_dxhat_xhat += static_cast<double>(dxhat) * xhat;
    }
    const float a = static_cast<float>(sum_dxhat / d), b = static_cast<float>(sum_dxhat_xhat / d);
    float* o = dx + r * d;
    for (int64_t j = 0; j < d; ++j) {
      const float xhat = (xr[j] - m) * s;
      const float v = s * (g[j] * gamma[j] - a - xhat * b);
      o[j] = accumulate_dx ? o[j] + v : v;
    }
  }
  if (dgamma) add_column_sums(dy_xhat.data(), rows, d, dgamma);
  if (dbeta) add_column_sums(dy, rows, d, dbeta);
}

void rms_norm_backward(const float* x, const float* rstd, int64_t rows, int64_t d, const float* gamma,
                       const float* dy, float* dx, bool accumulate_dx, float* dgamma) {
  std::vector<float> dy_xhat(rows * d);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    const float* g = dy + r * d;
    float* p = dy_xhat.data() + r * d;
    const float s = rstd[r];
    double dot = 0;  // Σ dy γ x
    for (int64_t j = 0; j < d; ++j) {
      p[j] = g[j] * xr[j] * s;
      dot += static_cast<double>(g[j]) * gamma[j] * xr[j];
    }
    const float c = static_cast<float>(dot * s * s * s / d);
    float* o = dx + r * d;
    for (int64_t j = 0; j < d; ++j) {
      const float v = s * g[j] * gamma[j] - xr[j] * c;
      o[j] = accumulate_dx ? o[j] + v : v;
    }
  }
  if (dgamma) add_column_sums(dy_xhat.data(), rows, d, dgamma);
}

void activation_backward(Activation f, const float* x, const float* dy, float* dx, int64_t n) {
  switch (f) {
    case Activation::GeLU:
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        const float cdf = 0.5f * (1.f + std::erf(v * 0.70710678118654752f));
        const float pdf = 0.39894228040143268f * std::exp(-0.5f * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
      }
      break;
    case Activation::GeLUTanh:
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        const float v = x[i], k = 0.79788456080286536f;
        const float t = std::tanh(k * (v + 0.044715f * v * v * v));
        dx[i] = dy[i] * (0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * k * (1.f + 3.f * 0.044715f * v * v));
      }
      break;
    case Activation::SiLU:
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        const float s = 1.f / (1.f + std::exp(-x[i]));
        dx[i] = dy[i] * s * (1.f + x[i] * (1.f - s));
      }
      break;
    case Activation::ReLU:
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > 0.f ? dy[i] : 0.f;
      break;
  }
}

void tanh_backward(const float* y, const float* dy, float* dx, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (1.f - y[i] * y[i]);
}

void rope_backward_inplace(float* dx, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, float theta) {
  rope_inplace(dx, batch, seq, heads, head_dim, theta, /*inverse=*/true);
}

void dropout_inplace(float* x, int64_t n, float p, uint64_t key) {
  if (p <= 0.f) return;
  const float scale = 1.f / (1.f - p);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = counter_uniform(key, i) < p ? 0.f : x[i] * scale;
}

}  // namespace tquant::train
