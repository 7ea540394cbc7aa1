#pragma once
// Backward passes of the transformer's layers, each beside the forward it inverts (the forwards
// are kernels/ops.h, shared with inference so that training sees exactly the inference model).
// Gradients of parameters are accumulated (+=); gradients of inputs are written, or added with
// `accumulate_dx`. Reductions over rows run in row order inside fixed column blocks, so results
// do not depend on the thread count.
#include <cstdint>

#include "model/config.h"

namespace tquant::train {

// out[j] += Σ_r a[r, j].
void add_column_sums(const float* a, int64_t rows, int64_t cols, float* out);

// A table lookup y[r] = table[index[r]] (+ others): dtable[index[r]] += dy[r].
void embedding_backward(const int32_t* index, int64_t rows, int64_t d, const float* dy, float* dtable);

// y = x Wᵀ + b with x [rows, in], W [out, in]: dx = dy W, dW += dyᵀ x, db += Σ_rows dy.
// dx, dw and db may each be null (not needed).
void linear_backward(const float* x, int64_t rows, int64_t in, const float* w, int64_t out, const float* dy,
                     float* dx, bool accumulate_dx, float* dw, float* db);

// LayerNorm, from the mean and rstd that layer_norm(..., mean, rstd) saved. dbeta may be null.
void layer_norm_backward(const float* x, const float* mean, const float* rstd, int64_t rows, int64_t d,
                         const float* gamma, const float* dy, float* dx, bool accumulate_dx, float* dgamma,
                         float* dbeta);
// RMSNorm, from the rstd that rms_norm(..., rstd) saved.
void rms_norm_backward(const float* x, const float* rstd, int64_t rows, int64_t d, const float* gamma,
                       const float* dy, float* dx, bool accumulate_dx, float* dgamma);

// dx = dy · f'(x) for the activation f, from its input x.
void activation_backward(Activation f, const float* x, const float* dy, float* dx, int64_t n);
// dx = dy · (1 − y²), from tanh's output y.
void tanh_backward(const float* y, const float* dy, float* dx, int64_t n);

// The transpose of rope_inplace (a rotation, so its inverse): rotates the gradient back.
void rope_backward_inplace(float* dx, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, float theta);

// Inverted dropout on n values: x[i] = keep(i) ? x[i] / (1 − p) : 0, keep(i) drawn from the
// counter stream `key`. Applied to the upstream gradient with the same key, it is its own
// backward (the mask is regenerated, never stored).
void dropout_inplace(float* x, int64_t n, float p, uint64_t key);

}  // namespace tquant::train
