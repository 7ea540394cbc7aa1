#pragma once
// Pieces shared by the safetensors_*.cc files; not part of the public interface.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"

namespace tquant::safetensors_detail {

// Parses JSON, refusing a key that appears twice in one object: nlohmann (like many parsers)
// silently keeps the last one, so two readers of the same file could disagree on which bytes a
// tensor is. `where` (a file name) starts every message.
nlohmann::json parse_json_unique_keys(std::string_view text, const std::string& where);

// "BOOL, U8, ..." for messages about unknown dtypes.
std::string known_dtype_names();

struct Header {
  std::vector<TensorInfo> tensors;  // sorted by data offset
  std::map<std::string, std::string> metadata;
};

// Validates the JSON header against a data area of `data_size` bytes, by the rules of the
// reference (Rust) implementation: every entry well typed, byte ranges matching shape × dtype,
// contiguous from 0 and covering the data area exactly (no overlaps, gaps or trailing bytes).
Header parse_header(std::string_view json_text, uint64_t data_size, const std::string& file);

}  // namespace tquant::safetensors_detail
