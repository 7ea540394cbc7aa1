#pragma once
// Batches given as JSON, the way Hugging Face tokenizers return them: {"input_ids": [[...]],
// "token_type_ids": [[...]], "attention_mask": [[1,1,0]]} (right padding only), plus, for
// training checks, "labels" (per position, -100 = not a target) or "sequence_labels".
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model.h"

namespace tquant {

std::vector<std::vector<int32_t>> int_rows(const nlohmann::json& j, const std::string& file, const char* key);
nlohmann::json read_json_file(const std::string& file);
Batch batch_from_json(const std::string& file);
Batch batch_from_json(const nlohmann::json& j, const std::string& file);

}  // namespace tquant
