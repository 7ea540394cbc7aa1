#pragma once
// Pieces that `tquant pretrain` and `tquant finetune` share.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/trainable.h"

namespace tquant::train {

nlohmann::ordered_json read_config_json(const std::filesystem::path& dir);

// HF's hidden_dropout_prob / attention_probs_dropout_prob (LLaMA: attention_dropout) from
// config.json, or `all` for both when given.
Dropout dropout_from_config(const nlohmann::ordered_json& config, std::optional<float> all);

// Warm-up given as a fraction of the run (< 1) or a step count (≥ 1).
int64_t warmup_steps(double warmup, int64_t total_steps);

// On --resume the options must be those of the interrupted run; the error names the first that
// differs.
void check_same_options(const nlohmann::ordered_json& saved, const nlohmann::ordered_json& now,
                        const std::filesystem::path& dir);

double median(std::vector<double> v);

}  // namespace tquant::train
