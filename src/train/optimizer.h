#pragma once
// AdamW (Loshchilov & Hutter; PyTorch's torch.optim.AdamW update), learning-rate schedules with
// linear warm-up (Hugging Face's get_{linear,cosine,constant}_schedule_with_warmup), and
// gradient clipping by the global L2 norm.
#include <cstdint>
#include <string>
#include <vector>

#include "train/trainable.h"

namespace tquant::train {

struct AdamWOptions {
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.01f;  // decoupled; only parameters with decay = true
};

class AdamW {
 public:
  AdamW(std::vector<Parameter>& params, AdamWOptions options);
  // One update with learning rate lr from the current gradients:
  //   p ← p − lr·λ·p;  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
  //   p ← p − lr · (m / (1−β₁ᵗ)) / (sqrt(v / (1−β₂ᵗ)) + ε)
  void step(float lr);
  int64_t steps() const { return t_; }

  // The moments, in parameter order, for checkpoints.
  const std::vector<Tensor>& first_moments() const { return m_; }
  const std::vector<Tensor>& second_moments() const { return v_; }
  // Restores a checkpoint's state; shapes must match.
  void restore(int64_t steps, const std::vector<Tensor>& m, const std::vector<Tensor>& v);

 private:
  std::vector<Parameter>& params_;
  AdamWOptions o_;
  std::vector<Tensor> m_, v_;
  int64_t t_ = 0;
};

enum class Decay { Linear, Cosine, Constant };
Decay parse_decay(const std::string& name);  // "linear", "cosine", "constant"

struct Schedule {
  float peak_lr = 1e-4f;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  Decay decay = Decay::Linear;
  // The learning rate of optimizer step `step` (0-based), as Hugging Face's schedulers give it:
  // step/warmup during warm-up, then decaying to 0 at total_steps.
  float lr_at(int64_t step) const;
};

// sqrt(Σ g²) over every gradient, summed in a fixed order.
double global_grad_norm(const std::vector<Parameter>& params);
// Scales every gradient so that the global norm is at most max_norm (PyTorch's
// clip_grad_norm_: factor max_norm / (norm + 1e-6) when norm > max_norm). Returns the norm
// before clipping.
double clip_grad_norm(std::vector<Parameter>& params, double max_norm);

}  // namespace tquant::train
