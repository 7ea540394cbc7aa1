#pragma once
// Forward hooks: the one mechanism behind calibration, outlier analysis and fake quantization.
// The forward pass calls every registered hook at each quantization point with the live
// activation; a hook may read it or change it in place, and the forward continues with the
// changed values. Point names are stable (see docs/hooks.md), e.g. "layers.3.attn.scores".
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tquant {

// What a hook knows about the batch the activation belongs to.
struct BatchInfo {
  int batch = 0;                        // B sequences
  int seq = 0;                          // T positions each (right-padded)
  const int32_t* ids = nullptr;         // [B*T] token ids
  const int32_t* lengths = nullptr;     // [B] valid (unpadded) positions of each sequence
  bool causal = false;                  // scores/probs above the diagonal are masked out
  int layer = -1;                       // block index of the point, -1 outside the blocks
};

// Activation layouts: residual-stream points, linear inputs/outputs and logits are [B, T, C];
// attention scores and probabilities are [B, H, T, T]; pooler/classifier points are [B, C].
class Hook {
 public:
  virtual ~Hook() = default;
  // Called at every point; implementations select the points they care about by name.
  virtual void on_activation(const std::string& point, Tensor& x, const BatchInfo& batch) = 0;
};

class Hooks {
 public:
  void add(std::shared_ptr<Hook> hook) { hooks_.push_back(std::move(hook)); }
  void clear() { hooks_.clear(); }
  bool empty() const { return hooks_.empty(); }
  void run(const std::string& point, Tensor& x, const BatchInfo& batch) const {
    for (const auto& h : hooks_) h->on_activation(point, x, batch);
  }

 private:
  std::vector<std::shared_ptr<Hook>> hooks_;
};

}  // namespace tquant
