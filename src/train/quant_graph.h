#pragma once
// Fake quantization inside the training graph, for quantization-aware training and for
// Token-Wise Clipping's fine stage: the learned quantizers (train/learned_quantizer.h) of every
// activation point and linear weight that a recipe quantizes. The training pass
// (train/trainable.cc) quantizes each point where the inference forward's hooks would, so a
// trained graph evaluates in `tquant eval` exactly as it trained; this class keeps what the
// backward needs and turns the gradients of quantized values into those of their inputs and of
// the quantizers' scales and zero points.
//
// Weights: the pass multiplies by the fake-quantized copy Ŵ, writes dŴ into a buffer of this
// class, and fold_weight_grads() adds the STE-masked dŴ to the latent (FP) weight's gradient.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "model/model.h"
#include "quant/calibration.h"
#include "quant/quant_params.h"
#include "quant/recipe.h"
#include "train/learned_quantizer.h"
#include "train/trainable.h"

namespace tquant::train {

// While alive, the model's linears and embedding tables hold their fake-quantized weights
// (quantize_weights with `fixed` parameters where given); the FP weights come back when it goes
// out of scope, also on an exception.
class QuantizedWeightsScope {
 public:
  QuantizedWeightsScope(Model& model, const Recipe& recipe, const std::map<std::string, QuantParams>& fixed);
  ~QuantizedWeightsScope();
  QuantizedWeightsScope(const QuantizedWeightsScope&) = delete;
  QuantizedWeightsScope& operator=(const QuantizedWeightsScope&) = delete;
  const std::map<std::string, std::string>& described() const { return described_; }

 private:
  std::vector<std::pair<Tensor*, Tensor>> latent_;  // model slot -> its FP tensor
  std::map<std::string, std::string> described_;
};

// QAT's starting point: each quantized linear's weight quantizer from the recipe's estimator on
// the FP weights, then the activation ranges calibrated on `batches` run through the
// weight-quantized model (as `tquant eval --recipe` does). The model keeps its FP weights.
// The result's weight_params hold the weight quantizers.
Calibration initial_quantizers(Model& model, const Recipe& recipe, const std::vector<Batch>& batches);

class QuantGraph {
 public:
  // activations: point -> initial parameters (from calibration); weights: linear or embedding
  // table name -> initial parameters. Points must be ones the training pass has (linear inputs, ".in", are not).
  QuantGraph(Model& model, const std::map<std::string, QuantParams>& activations,
             const std::map<std::string, QuantParams>& weights, bool learn_activations, bool learn_weights);

  // The learnable scales and zero points, named "quant.<point or weight>.scale|zero_point".
  std::vector<Parameter>& parameters() { return params_; }
  void zero_grad();
  // After every optimizer step: keeps scales positive and zero points in the code range.
  void constrain();

  bool quantizes(const std::string& point) const { return activations_.count(point) > 0; }
  // In place; x is kept for the backward.
  void forward(const std::string& point, Tensor& x);
  // d(quantized x) becomes d(x); the quantizer's gradients accumulate.
  void backward(const std::string& point, Tensor& d);
  // The kept input of a point (the attention backward needs the softmax before quantization).
  const Tensor& saved_input(const std::string& point) const;

  // Called by the pass before its forward: requantizes every weight from the current latent
  // weights and scales, and clears the dŴ buffers. Inputs are kept only when a backward follows.
  void begin_pass(bool backward);
  bool quantizes_weight(const std::string& name) const { return weights_.count(name) > 0; }
  const float* weight(const Linear& l) const;   // Ŵ, or the latent weight when not quantized
  float* weight_grad(const std::string& name);  // dŴ buffer of a quantized linear or table

  // Model::embed reads the model's own tables, so while the returned guard lives the quantized
  // tables' slots hold Ŵ; the latent tables come back when it goes.
  class QuantizedTables {
   public:
    explicit QuantizedTables(QuantGraph& g);
    ~QuantizedTables();
    QuantizedTables(const QuantizedTables&) = delete;
    QuantizedTables& operator=(const QuantizedTables&) = delete;

   private:
    QuantGraph& g_;
  };
  // Called after the backward: dW += mask ⊙ dŴ through `latent_grad`, and the scales' grads.
  void end_pass(const std::function<float*(const Tensor&)>& latent_grad);

  // The current (learned) parameters: per activation point, and per quantized linear.
  std::map<std::string, QuantParams> activation_params() const;
  std::map<std::string, QuantParams> weight_params() const;

 private:
  struct WeightState {
    Tensor* slot = nullptr;  // the model's tensor: the linear's weight or the embedding table
    Tensor latent;           // the same storage, kept while a QuantizedTables swaps the slot
    bool table = false;
    LearnedQuantizer q;
    Tensor quantized, grad;
  };
  void add_parameters(LearnedQuantizer& q);

  std::map<std::string, LearnedQuantizer> activations_;
  std::map<std::string, WeightState> weights_;
  std::map<std::string, Tensor> saved_;
  bool keep_inputs_ = false;
  std::vector<Parameter> params_;
  std::map<std::string, std::pair<Tensor, Tensor>> grads_;  // quantizer name -> (dscale, dzero)
};

}  // namespace tquant::train
