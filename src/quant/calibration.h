#pragma once
// Calibrating and applying a recipe with the forward hooks:
//  1. weights are fake-quantized in place (each linear's spec from the recipe);
//  2. activation ranges are estimated on calibration batches run through that model, observing
//     only unpadded tokens (and only the visible attention entries); PEG with permutation first
//     records every channel's range, then groups channels by it (Bondarenko et al. §2);
//  3. a FakeQuantHook then quantizes every calibrated point during evaluation.
// The calibrated parameters can be saved to JSON and loaded, so one calibration serves many
// evaluations.
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/hooks.h"
#include "model/model.h"
#include "quant/quant_params.h"
#include "quant/recipe.h"

namespace tquant {

struct Calibration {
  std::string recipe;
  std::map<std::string, QuantParams> points;  // activation point -> parameters
  std::map<std::string, std::string> weights;  // linear or table -> a one-line description of its quantizer
  // linear or embedding table -> its quantizer, when fixed by training (QAT) rather than
  // estimated from the weights; empty for post-training recipes.
  std::map<std::string, QuantParams> weight_params;
};

// The grouping of a weight [out, in] under `spec`: per tensor, per output channel or per group.
Grouping weight_grouping(const TensorQuantSpec& spec);

// A weight tensor the recipe quantizes: a linear's weight [out, in], named as the linear, or an
// embedding table [rows, D] (embed.tokens|positions|types), whose rows are its channels.
struct QuantizedTensor {
  std::string name;
  Tensor* tensor = nullptr;
  TensorQuantSpec spec;
};
std::vector<QuantizedTensor> quantized_tensors(Model& model, const Recipe& recipe);

// The quantizer the recipe's estimator gives a weight tensor under its spec.
QuantParams estimate_weight_params(const QuantizedTensor& t);

// Fake-quantizes every weight tensor the recipe quantizes (linears and embedding tables), with
// `fixed` parameters where given (QAT's learnt scales) and estimated ones elsewhere; returns
// name -> description.
// `used`, when given, receives linear -> the parameters applied (what --real-int8 needs to recover
// the integer codes).
std::map<std::string, std::string> quantize_weights(Model& model, const Recipe& recipe,
                                                    const std::map<std::string, QuantParams>& fixed = {},
                                                    std::map<std::string, QuantParams>* used = nullptr);

// Runs `batches` through the model with observers on every point the recipe quantizes.
Calibration calibrate_activations(const Model& model, const Recipe& recipe, const std::vector<Batch>& batches);

void save_calibration(const std::filesystem::path& file, const Calibration& c);
std::string calibration_json(const Calibration& c);  // what save_calibration writes
Calibration load_calibration(const std::filesystem::path& file);

// Applies the calibrated parameters in place at each point (per-token points are dynamic).
class FakeQuantHook : public Hook {
 public:
  explicit FakeQuantHook(const Calibration& calibration);
  void on_activation(const std::string& point, Tensor& x, const BatchInfo& batch) override;

 private:
  std::map<std::string, QuantParams> params_;
};

// The valid part of an activation as a dense [rows, cols] block: unpadded tokens of [B, T, C]
// points; visible (unmasked) entries of [B, H, T, T] scores and probabilities, as one row.
struct ValidView {
  std::vector<float> data;
  int64_t rows = 0, cols = 0;
};
ValidView valid_part(const Tensor& x, const BatchInfo& batch);

// Token windows for calibration: `samples` windows of `length` tokens at seeded random starts
// (with BOS first when bos_id >= 0), grouped `per_batch` windows to a Batch.
std::vector<Batch> calibration_windows(const std::vector<int32_t>& tokens, int samples, int length, uint64_t seed,
                                       int bos_id, int per_batch);

}  // namespace tquant
