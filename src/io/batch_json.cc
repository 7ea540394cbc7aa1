#include "io/batch_json.h"

#include <fstream>

#include "core/error.h"

namespace tquant {

std::vector<std::vector<int32_t>> int_rows(const nlohmann::json& j, const std::string& file, const char* key) {
  if (!j.is_array()) fail("{}: \"{}\" must be a list of lists of integers", file, key);
  std::vector<std::vector<int32_t>> rows;
  for (const auto& row : j) {
    if (!row.is_array()) fail("{}: \"{}\" must be a list of lists of integers", file, key);
    rows.emplace_back();
    for (const auto& v : row) {
      if (!v.is_number_integer()) fail("{}: \"{}\" holds a non-integer {}", file, key, v.dump());
      rows.back().push_back(v.get<int32_t>());
    }
  }
  return rows;
}

nlohmann::json read_json_file(const std::string& file) {
  std::ifstream in(file);
  if (!in) fail("{}: cannot open", file);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: malformed JSON: {}", file, e.what());
  }
}

Batch batch_from_json(const std::string& file) { return batch_from_json(read_json_file(file), file); }

Batch batch_from_json(const nlohmann::json& j, const std::string& file) {
  if (!j.contains("input_ids")) fail("{}: field \"input_ids\" is missing", file);
  const auto ids = int_rows(j["input_ids"], file, "input_ids");
  if (ids.empty() || ids[0].empty()) fail("{}: \"input_ids\" is empty", file);
  Batch b;
  b.batch = static_cast<int>(ids.size());
  b.seq = static_cast<int>(ids[0].size());
  for (const auto& r : ids) {
    if (static_cast<int>(r.size()) != b.seq) fail("{}: all rows of \"input_ids\" must have the same length", file);
    b.ids.insert(b.ids.end(), r.begin(), r.end());
  }
  if (j.contains("token_type_ids"))
    for (const auto& r : int_rows(j["token_type_ids"], file, "token_type_ids")) b.type_ids.insert(b.type_ids.end(), r.begin(), r.end());
  b.lengths.assign(b.batch, b.seq);
  if (j.contains("attention_mask")) {
    const auto mask = int_rows(j["attention_mask"], file, "attention_mask");
    if (static_cast<int>(mask.size()) != b.batch) fail("{}: \"attention_mask\" must have one row per sequence", file);
    for (int i = 0; i < b.batch; ++i) {
      int len = 0;
      while (len < static_cast<int>(mask[i].size()) && mask[i][len] == 1) ++len;
      for (size_t t = len; t < mask[i].size(); ++t)
        if (mask[i][t] != 0) fail("{}: \"attention_mask\" row {} is not right-padded (1…1 0…0)", file, i);
      b.lengths[i] = len;
    }
  }
  return b;
}

}  // namespace tquant
