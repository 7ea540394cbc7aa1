#pragma once
// Elementwise and row-wise transformer operations on row-major float32 data.
// Rows are processed in parallel; each row's arithmetic is sequential, so results do not
// depend on the thread count.
#include <cstdint>

namespace tquant {

// y[rows, out] = x[rows, in] · w[out, in]ᵀ (+ bias[out] if non-null), through sgemm.
void linear_forward(const float* x, int64_t rows, int64_t in, const float* w, const float* bias,
                    int64_t out, float* y);

// LayerNorm over the last dimension; beta may be null. When given, mean_out/rstd_out [rows]
// receive each row's mean and 1/sqrt(var + eps), which the backward pass needs.
void layer_norm(const float* x, int64_t rows, int64_t d, const float* gamma, const float* beta,
                float eps, float* y, float* mean_out = nullptr, float* rstd_out = nullptr);
// RMSNorm (LLaMA): x · rsqrt(mean(x²) + eps) · gamma; rstd_out as for layer_norm.
void rms_norm(const float* x, int64_t rows, int64_t d, const float* gamma, float eps, float* y,
              float* rstd_out = nullptr);

// The softmaxes take their exps and sums from kernels/vexp.h, so they give the same bits at
// every SIMD level. A row whose maximum is −Inf (fully masked) becomes zeros.
void softmax_rows(float* x, int64_t rows, int64_t d);
// softmax(scale · x[0..visible)) in place, and zero for x[visible..d): one masked attention row.
void softmax_prefix(float* x, int64_t d, int64_t visible, float scale);

void gelu_erf(float* x, int64_t n);
void gelu_tanh(float* x, int64_t n);
void silu(float* x, int64_t n);  // x / (1 + exp(−x)), its exp from kernels/vexp.h
void relu(float* x, int64_t n);
void tanh_inplace(float* x, int64_t n);

// x += y
void add_inplace(float* x, const float* y, int64_t n);
// x[r, j] *= scale[j] for every row r of a [rows, cols] buffer.
void scale_columns_inplace(float* x, int64_t rows, int64_t cols, const float* scale);

// Rotary embeddings in HF's rotate_half layout: within each head, element i pairs with
// i + head_dim/2. x is [B, T, heads*head_dim]; positions are 0..T-1 per sequence.
// inverse rotates by the negated angles: the inverse and the transpose of the rotation.
void rope_inplace(float* x, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, float theta,
                  bool inverse = false);

}  // namespace tquant
