#pragma once
// Checked access to a checkpoint's tensors for the architecture loaders: every tensor is looked
// up under the family's prefix, and its shape is checked against what config.json implies.
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"
#include "model/model.h"

namespace tquant {

namespace wq {
struct QuantizationConfig;
struct QuantizedWeight;
}

class WeightReader {
 public:
  WeightReader(const Checkpoint& checkpoint, std::filesystem::path dir);

  // Tensor names are tried with each prefix in turn ("" is the bare name).
  void set_prefixes(std::vector<std::string> prefixes) { prefixes_ = std::move(prefixes); }
  bool has(const std::string& name) const;
  Tensor take(const std::string& name, const Shape& expected) const;
  // Empty when absent; shape-checked when present.
  Tensor take_optional(const std::string& name, const Shape& expected) const;
  // HF Conv1D stores [in, out]; returns the [out, in] matrix that Linear expects.
  Tensor take_transposed(const std::string& name, const Shape& stored) const;

  // A linear layer stored as name.weight [out, in] (or, in a tquant quantized checkpoint, as
  // name.qweight etc., dequantized here), with its CheckpointSource filled in.
  Linear linear(const std::string& name, int64_t out, int64_t in, bool bias) const;
  Norm norm(const std::string& weight, const std::string& bias, int64_t d) const;

  // The stored name of `name` with its prefix; the bare name when it is not stored (e.g. a
  // tied head), as a writer would name it.
  std::string full_name(const std::string& name) const;

  // Quantized checkpoints (wquant/quantized_checkpoint.h). set_quantization hands over the
  // folder's quantization_config (kept by the caller); then a layer whose <prefix>.qweight is
  // stored is read through take_dequantized. is_quantized is an error when a .qweight is stored
  // but no quantization_config was given.
  void set_quantization(const wq::QuantizationConfig* q) { quant_ = q; }
  // linear() then holds quantized layers packed (Linear::packed, with a Z-Fold ζ as
  // Linear::input_scale) instead of dequantizing them.
  void set_keep_packed(bool keep) { keep_packed_ = keep; }
  bool is_quantized(const std::string& prefix) const;
  Tensor take_dequantized(const std::string& prefix, int64_t out, int64_t in) const;  // [out, in]
  // The same layer's codes, scales and zero points, validated as take_dequantized does.
  wq::QuantizedWeight take_quantized(const std::string& prefix, int64_t out, int64_t in) const;
  // The stored name of the weight of `prefix`: <prefix>.weight, with its resolved prefix.
  std::string weight_name(const std::string& prefix) const;
  // After loading: fails when quantization_config lists a module that was not read.
  void check_quantized_modules_used() const;

  const Checkpoint& checkpoint() const { return checkpoint_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::string resolve(const std::string& name) const;  // "" when absent
  const Checkpoint& checkpoint_;
  std::filesystem::path dir_;
  std::vector<std::string> prefixes_{""};
  const wq::QuantizationConfig* quant_ = nullptr;
  bool keep_packed_ = false;
  mutable std::set<std::string> quantized_used_;
};

Tensor transpose2d(const Tensor& t);

// The per-family loaders (arch_*.cc) fill the model's weights from the checkpoint.
void load_llama(const WeightReader& r, Model& m);
void load_bert(const WeightReader& r, Model& m);
void load_opt(const WeightReader& r, Model& m);
void load_gpt2(const WeightReader& r, Model& m);

}  // namespace tquant
