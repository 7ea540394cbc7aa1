#pragma once
// Scaled dot-product attention for training: the forward saves the softmax probabilities, the
// backward turns the context's gradient into the gradients of q, k and v. Grouped-query
// attention (kv_heads < heads) shares each k/v head among heads/kv_heads query heads.
#include <cstdint>

namespace tquant::train {

struct AttentionShape {
  int64_t batch = 0, seq = 0, heads = 0, kv_heads = 0, head_dim = 0;
  bool causal = false;
  const int32_t* lengths = nullptr;  // [batch] valid (unpadded) positions; keys past it are masked
};

// q [B*T, H*dh] (after RoPE), k and v [B*T, KV*dh]. probs [B, H, T, T] receives the softmax
// (before dropout), ctx [B*T, H*dh] the context dropout(probs)·v. Without dropout this is
// bit for bit the inference forward (model/forward.cc).
void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, float* probs,
                       float* ctx, float dropout, uint64_t key);

// Writes dq, dk and dv (same layouts as q, k, v) from dctx.
void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v,
                        const float* probs, const float* dctx, float* dq, float* dk, float* dv, float dropout,
                        uint64_t key);

}  // namespace tquant::train
