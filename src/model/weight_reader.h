#pragma once
// Checked access to a checkpoint's tensors for the architecture loaders: every tensor is looked
// up under the family's prefix, and its shape is checked against what config.json implies.
#include <filesystem>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"
#include "model/model.h"

namespace tquant {

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

  Linear linear(const std::string& name, int64_t out, int64_t in, bool bias) const;
  Norm norm(const std::string& weight, const std::string& bias, int64_t d) const;

  const Checkpoint& checkpoint() const { return checkpoint_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::string resolve(const std::string& name) const;  // "" when absent
  const Checkpoint& checkpoint_;
  std::filesystem::path dir_;
  std::vector<std::string> prefixes_{""};
};

Tensor transpose2d(const Tensor& t);

// The per-family loaders (arch_*.cc) fill the model's weights from the checkpoint.
void load_llama(const WeightReader& r, Model& m);
void load_bert(const WeightReader& r, Model& m);
void load_opt(const WeightReader& r, Model& m);
void load_gpt2(const WeightReader& r, Model& m);

}  // namespace tquant
