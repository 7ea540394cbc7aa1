#pragma once
// Scaled dot-product attention for training: the forward saves the softmax probabilities, the
// backward turns the context's gradient into the gradients of q, k and v. Grouped-query
// attention (kv_heads < heads) shares each k/v head among heads/kv_heads query heads.
#include <cstdint>
#include <functional>

namespace tquant::train {

struct AttentionShape {
  int64_t batch = 0, seq = 0, heads = 0, kv_heads = 0, head_dim = 0;
  bool causal = false;
  const int32_t* lengths = nullptr;  // [batch] valid (unpadded) positions; keys past it are masked
};

// Fake quantization inside attention (QAT): each callback sees a whole [B, H, T, T] buffer.
struct AttentionQuant {
  std::function<void(float*)> scores;           // forward: the raw scores q·kᵀ (before 1/√dh and the mask)
  std::function<void(float*)> probs;            // forward: the softmax output
  std::function<void(float*)> probs_backward;   // backward: d(quantized probs) → d(softmax output)
  std::function<void(float*)> scores_backward;  // backward: d(quantized scores) → d(raw scores)
  const float* softmax = nullptr;  // backward: the softmax before quantization (null: `probs` is it)
};

// q [B*T, H*dh] (after RoPE), k and v [B*T, KV*dh]. probs [B, H, T, T] receives the softmax
// (before dropout), ctx [B*T, H*dh] the context dropout(probs)·v. Without dropout this is
// bit for bit the inference forward (model/forward.cc).
void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, float* probs,
                       float* ctx, float dropout, uint64_t key, const AttentionQuant* quant = nullptr);

// Writes dq, dk and dv (same layouts as q, k, v) from dctx. `probs` is what the forward left in
// its buffer (quantized when `quant` quantizes it).
void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v,
                        const float* probs, const float* dctx, float* dq, float* dk, float* dv, float dropout,
                        uint64_t key, const AttentionQuant* quant = nullptr);

}  // namespace tquant::train
