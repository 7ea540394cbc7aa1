#pragma once
// The tquant quantized checkpoint: a Hugging Face model folder whose quantized linear layers are
// stored as packed integer codes with their scales and zero points (README, "Quantized
// checkpoint format"). Every tquant loader reads it directly (Model::load dequantizes to F32);
// the `fake` variant is a plain FP checkpoint holding the dequantized weights.
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model/model.h"
#include "wquant/weight_quant.h"

namespace tquant::wq {

constexpr const char* kQuantMethod = "tquant";
constexpr int kFormatVersion = 1;

// The parsed `quantization_config` of config.json.
struct QuantizationConfig {
  std::filesystem::path config_path;            // for error messages
  WeightFormat format;                          // the default for every module
  std::map<std::string, WeightFormat> modules;  // HF prefix (e.g. "model.layers.0.self_attn.q_proj")
                                                // -> its format (the default or its override)
};

// nullopt when config.json has no quantization_config. A quant_method other than "tquant"
// (e.g. AutoGPTQ's "gptq"), a newer format_version or a malformed field is an error naming the
// file and the field.
std::optional<QuantizationConfig> read_quantization_config(const std::filesystem::path& config_json);
std::optional<QuantizationConfig> parse_quantization_config(const nlohmann::json& config,
                                                            const std::filesystem::path& config_json);

// Reads and validates <prefix>.qweight / .scales / .zeros (/ .zeta) of a [out, in] linear layer
// stored in format `f`: dtypes, shapes, codes and zero points within 0..2^bits-1, padding bits
// zero, scales finite and > 0 (fp16 values, with fp16 offsets −scale·zero, for an fp16 grid),
// ζ finite, symmetric zero points at 2^(bits-1). Errors name the
// file, the tensor and the problem.
QuantizedWeight read_quantized_linear(const Checkpoint& checkpoint, const std::string& prefix,
                                      const WeightFormat& f, int64_t out, int64_t in);

// Writes `model` as a checkpoint folder `out_dir`:
//   * model.safetensors: every tensor the model maps (CheckpointSource) from its CURRENT values
//     (so norm γ changed by Z-Fold etc. are kept), under the input's names; each quantized linear
//     (the map's key is Linear::name, e.g. "layers.0.attn.q_proj") as <prefix>.qweight U8
//     [out, ceil(in*bits/8)], .scales F32 [out, groups], .zeros U8 [out, groups], .zeta F32 [in]
//     when ζ is present, its bias unchanged; with `fake`, as a dequantized F32 <prefix>.weight
//     in the input's layout (GPT-2 Conv1D transposed, c_attn re-fused). Tensors of the input
//     that the model does not map are copied byte for byte; tied embeddings stay tied (and their
//     safetensors alias survives) unless the head was quantized, which unties them;
//   * config.json: the input's, plus quantization_config ({"quant_method": "tquant",
//     "format_version": 1, "bits", "group_size", "sym", ["fp16_grid": true,] "modules", ...,
//     `method_info` merged});
//     with `fake` no quantization_config but a "tquant" provenance object instead;
//   * every other file of the input folder (tokenizer, generation config, ...), copied.
// Atomic: built in "<out_dir>.tmp-<pid>" (removed on error and on SIGINT/SIGTERM/SIGHUP), then
// renamed into place. An existing out_dir is replaced only when it is empty or a previous tquant
// output (its config.json has quantization_config.quant_method "tquant" or a "tquant" object);
// anything else, and an out_dir that is, contains or lies inside the input folder, is refused.
// The input folder (model.dir()) is only read.
// The rule above for out_dir, checked on its own so that a command can refuse a bad --out before
// spending its time on the quantization.
void check_output_folder(const std::filesystem::path& input, const std::filesystem::path& out_dir);

void write_quantized_checkpoint(const Model& model, const std::map<std::string, QuantizedWeight>& quantized,
                                const nlohmann::json& method_info, const std::filesystem::path& out_dir,
                                bool fake);

}  // namespace tquant::wq
