#pragma once
// Training output folders. Each is a Hugging Face model folder that `tquant eval`, `quantize`
// and `analyze` load unchanged (config.json, model.safetensors, the tokenizer's files), plus
// trainer_state.json (progress, options, the loss log) and, for a run that is not finished,
// optimizer.safetensors (AdamW's moments) from which --resume continues. Written atomically:
// the folder is built beside the target and renamed into place, so a kill at any moment leaves
// either the previous checkpoint or the new one.
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "train/optimizer.h"
#include "train/trainable.h"

namespace tquant::train {

constexpr const char* kTrainerStateFile = "trainer_state.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";

// The parameters' current values, F32, under their checkpoint names (tied weights once).
std::vector<TensorToWrite> parameter_tensors(const std::vector<Parameter>& params);

// config, model tensors, the tokenizer files of tokenizer_dir (tokenizer.json,
// tokenizer_config.json, special_tokens_map.json, vocab.txt, vocab.json, merges.txt, where
// present), trainer_state, and the optimizer's moments when `optimizer` is non-null.
void write_training_folder(const std::filesystem::path& out, const nlohmann::ordered_json& config,
                           const std::vector<TensorToWrite>& model_tensors, const std::filesystem::path& tokenizer_dir,
                           const nlohmann::ordered_json& trainer_state, const AdamW* optimizer,
                           const std::vector<Parameter>* params,
                           const std::vector<std::pair<std::string, std::string>>& extra_files = {});

// An existing --out is replaced only when it is empty or a training folder (it holds
// trainer_state.json); with resume it must be one.
void check_training_output(const std::filesystem::path& out, bool resume);

nlohmann::ordered_json read_trainer_state(const std::filesystem::path& dir);
// Restores AdamW's moments from dir/optimizer.safetensors.
void restore_optimizer(const std::filesystem::path& dir, const std::vector<Parameter>& params, int64_t steps,
                       AdamW& optimizer);

}  // namespace tquant::train
