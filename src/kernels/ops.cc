#include "kernels/ops.h"

#include "kernels/gemm.h"
#include "kernels/vexp.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace tquant {

void linear_forward(const float* x, int64_t rows, int64_t in, const float* w, const float* bias,
                    int64_t out, float* y) {
  if (rows == 0 || out == 0) return;
  gemm(false, true, rows, out, in, 1.f, x, in, w, in, 0.f, y, out);
  if (bias) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      float* yr = y + r * out;
      for (int64_t j = 0; j < out; ++j) yr[j] += bias[j];
    }
  }
}

void layer_norm(const float* x, int64_t rows, int64_t d, const float* gamma, const float* beta,
                float eps, float* y, float* mean_out, float* rstd_out) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    // Two passes in double: the mean first, so the variance does not cancel catastrophically
    // on the large-offset rows that outlier dimensions produce.
    double mean = 0;
    for (int64_t j = 0; j < d; ++j) mean += xr[j];
    mean /= d;
    double var = 0;
    for (int64_t j = 0; j < d; ++j) var += (xr[j] - mean) * (xr[j] - mean);
    var /= d;
    const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
    const float m = static_cast<float>(mean);
    for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - m) * inv * gamma[j] + (beta ? beta[j] : 0.f);
    if (mean_out) mean_out[r] = m;
    if (rstd_out) rstd_out[r] = inv;
  }
}

void rms_norm(const float* x, int64_t rows, int64_t d, const float* gamma, float eps, float* y, float* rstd_out) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) ss += static_cast<double>(xr[j]) * xr[j];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / d + eps));
    for (int64_t j = 0; j < d; ++j) yr[j] = xr[j] * inv * gamma[j];
    if (rstd_out) rstd_out[r] = inv;
  }
}

void softmax_rows(float* x, int64_t rows, int64_t d) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * d;
    const float mx = max_value(xr, d);
    if (mx == -INFINITY) {  // a fully masked row: no key to attend to
      for (int64_t j = 0; j < d; ++j) xr[j] = 0.f;
      continue;
    }
    const float inv = static_cast<float>(1.0 / exp_sub_sum(xr, d, mx));
    for (int64_t j = 0; j < d; ++j) xr[j] *= inv;
  }
}

void softmax_prefix(float* x, int64_t d, int64_t visible, float scale) {
  if (visible > 0) {
    const float mx = scale_max(x, visible, scale);
    const float inv = static_cast<float>(1.0 / exp_sub_sum(x, visible, mx));
    for (int64_t j = 0; j < visible; ++j) x[j] *= inv;
  }
  for (int64_t j = visible; j < d; ++j) x[j] = 0.f;
}

void gelu_erf(float* x, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.f + std::erf(x[i] * 0.70710678118654752f));
}

void gelu_tanh(float* x, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.f + std::tanh(0.79788456080286536f * (v + 0.044715f * v * v * v)));
  }
}

void silu(float* x, int64_t n) {
  // x / (1 + exp(−x)) with the exps of a chunk at a time from exp_rows (the division loops
  // vectorize as they are). exp(−x) = +Inf for x < −88.7 gives −0, and the zero it gives for
  // x > 87.3 gives x, as the limits do.
  constexpr int64_t kChunk = 256;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < n; c += kChunk) {
    const int64_t m = std::min(kChunk, n - c);
    float* xc = x + c;
    float e[kChunk];
    for (int64_t j = 0; j < m; ++j) e[j] = -xc[j];
    exp_rows(e, e, m);
    for (int64_t j = 0; j < m; ++j) xc[j] = xc[j] / (1.f + e[j]);
  }
}

void relu(float* x, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0.f ? x[i] : 0.f;
}

void tanh_inplace(float* x, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
}

void add_inplace(float* x, const float* y, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void scale_columns_inplace(float* x, int64_t rows, int64_t cols, const float* scale) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) x[r * cols + j] *= scale[j];
}

void rope_inplace(float* x, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, float theta,
                  bool inverse) {
  const int64_t half = head_dim / 2;
  // HF computes inv_freq in float32 and the angle as float32 position * inv_freq; the cos/sin
  // of that angle are then taken in float32. Doing the same keeps us within rounding of it.
  std::vector<float> inv_freq(half);
  for (int64_t i = 0; i < half; ++i)
    inv_freq[i] = static_cast<float>(1.0 / std::pow(static_cast<double>(theta), (2.0 * i) / head_dim));
  std::vector<float> cos_t(seq * half), sin_t(seq * half);
  for (int64_t t = 0; t < seq; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(t) * inv_freq[i];
      cos_t[t * half + i] = std::cos(angle);
      sin_t[t * half + i] = inverse ? -std::sin(angle) : std::sin(angle);
    }
  const int64_t width = heads * head_dim;
#pragma omp parallel for schedule(static)
  for (int64_t bt = 0; bt < batch * seq; ++bt) {
    const int64_t t = bt % seq;
    const float* c = &cos_t[t * half];
    const float* s = &sin_t[t * half];
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + bt * width + h * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

}  // namespace tquant
