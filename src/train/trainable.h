#pragma once
// A Model made trainable: its parameters with gradient buffers, and a forward pass that keeps
// what the backward pass needs, written layer by layer in the llm.c style (no autograd). The
// forward is the inference forward (kernels/ops.h), so with dropout off the trained model's
// logits are exactly what `tquant eval` computes. Training updates the Model's tensors in place.
//
// Supported: pre-norm decoders (LLaMA: RMSNorm, RoPE, grouped-query attention, gated FFN) with a
// causal-LM head, and post-norm encoders (BERT) with masked-LM or sequence classification /
// regression heads. Results do not depend on the thread count.
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "model/model.h"
#include "train/losses.h"

namespace tquant::train {

struct Parameter {
  std::string name;  // the tensor's name in the checkpoint (e.g. "bert.encoder.layer.0.output.dense.weight")
  Tensor value;      // shares the Model's storage
  Tensor grad;
  bool decay = true;  // weight decay applies (not to biases and norm parameters)
};

// HF's hidden_dropout_prob (embeddings, attention output, FFN output, pooler output) and
// attention_probs_dropout_prob.
struct Dropout {
  float hidden = 0.f;
  float attention = 0.f;
};

// What the loss compares against: per position for LM heads (kIgnoreLabel = not a target), per
// sequence for classification (the class id) or regression (the score).
struct Targets {
  const std::vector<int32_t>* tokens = nullptr;   // [B*T]
  const std::vector<float>* sequences = nullptr;  // [B]
  // Distillation instead of the task loss: the loss is Σ (logit − teacher)² over the head's
  // logits ([B, labels] for sequence heads; for LM heads [targets, V], the target positions in
  // order). Token-Wise Clipping's fine stage matches the FP model's logits this way.
  const std::vector<float>* teacher_logits = nullptr;
};

class QuantGraph;

class TrainableModel {
 public:
  // Fails for architectures or settings the backward passes do not cover (Gamma Migration's
  // residual scales, GPT-2's fused projections).
  explicit TrainableModel(Model& model);

  Model& model() { return model_; }
  std::vector<Parameter>& parameters() { return params_; }
  const std::vector<Parameter>& parameters() const { return params_; }
  int64_t parameter_count() const;
  void zero_grad();

  // Forward, loss and backward of one micro-batch. Gradients accumulate into the parameters'
  // grad; they are those of Σ_targets loss · grad_scale. `dropout_key` seeds the masks.
  LossSum accumulate(const Batch& batch, const Targets& targets, float grad_scale, const Dropout& dropout,
                     uint64_t dropout_key);
  // Forward and loss only, without dropout.
  LossSum evaluate(const Batch& batch, const Targets& targets);
  // The head's logits of a forward without dropout (with the quantizers of the graph, if any).
  Tensor logits(const Batch& batch, const Targets& targets);

  // Fake quantization in the graph (QAT, Token-Wise Clipping's fine stage); null removes it.
  // Its scales and zero points are not among parameters(): the caller decides who trains them.
  void set_quant_graph(QuantGraph* graph) { quant_ = graph; }

 private:
  LossSum run(const Batch& batch, const Targets& targets, float grad_scale, const Dropout& dropout,
              uint64_t dropout_key, bool backward, Tensor* logits = nullptr);
  Tensor& grad_of(const Tensor& value);
  float* grad_ptr(const Tensor& value);  // null for an empty tensor

  Model& model_;
  QuantGraph* quant_ = nullptr;
  std::vector<Parameter> params_;
  std::unordered_map<const float*, size_t> by_storage_;  // tied weights share one gradient
};

}  // namespace tquant::train
