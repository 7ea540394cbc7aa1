#pragma once
// Second-moment statistics of one transformer block, gathered by a forward hook while the
// block's calibration inputs run through it (METHODS.md §4 "Statistics"). Every sum runs over the
// unpadded tokens only and is scaled by 2/N (N = calibration tokens) as the OPTQ reference does:
//   H[linear input]   = 2/N Σ x xᵀ               for each distinct linear input (q/k/v share one,
//                                                 gate/up share one)
//   G_Q[kv head g]    = 2/N Σ_s k_s k_sᵀ          keys after RoPE: the Q objective's E[KᵀK]
//   G_K[kv head g]    = 2/N Σ_{h∈g} Σ_t q_t q_tᵀ / |g|   queries after RoPE, averaged over the
//                                                 group's query heads: the K objective's E[QᵀQ]
//   H_V[kv head g]    = 2/N Σ_{h∈g} Σ (A_h X)ᵀ(A_h X)    the V objective's E[(AX)(AX)ᵀ], summed
//                                                 over the query heads that read this V head
// The attention statistics are gathered only when asked for (aespa); they cost one extra
// [T×T]·[T×D] product per head and sequence.
#include <map>
#include <string>
#include <vector>

#include "model/hooks.h"
#include "model/model.h"

namespace tquant::wq {

struct BlockStatistics {
  std::map<std::string, Tensor> H;  // by linear name (q, k and v map to copies of one H)
  std::vector<Tensor> G_Q, G_K, H_V;  // one per KV head, when attention statistics were gathered
  int64_t tokens = 0;
};

class BlockStatsHook : public Hook {
 public:
  BlockStatsHook(const Model& model, int layer, bool attention_stats);
  void on_activation(const std::string& point, Tensor& x, const BatchInfo& batch) override;
  // Scales the sums by 2/N and hands them out; the hook is spent afterwards.
  BlockStatistics finish();

 private:
  struct Input {
    std::vector<std::string> linears;  // the linears that read this point
    Tensor sum;                        // Σ x xᵀ
  };
  void accumulate_heads(const float* x, const BatchInfo& batch, int64_t heads, std::vector<Tensor>& out);
  void accumulate_values(const Tensor& probs, const BatchInfo& batch);

  const ModelConfig& config_;
  int layer_;
  bool attention_stats_;
  std::map<std::string, Input> inputs_;  // by hook point ("layers.N.attn.q_proj.in", ...)
  std::string attn_input_point_, query_point_, key_point_, probs_point_;
  Tensor attn_input_;  // the current batch's attention input, kept for A·X
  std::vector<Tensor> g_q_, g_k_, h_v_;
  int64_t tokens_ = 0;
};

}  // namespace tquant::wq
