#pragma once
// Read-only access to one node of a parsed JSON file that remembers where it is, so that every
// error names the file, the JSON field (e.g. `model.merges[12]`) and what is wrong with it.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tquant::tok {

class JsonView {
 public:
  JsonView(const nlohmann::json& node, std::string file, std::string path);

  const nlohmann::json& raw() const { return *node_; }
  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  // "FILE: FIELD" (or just the file at the root), the prefix of every error message.
  std::string where() const;

  bool is_null() const { return node_->is_null(); }
  // Present and not null.
  bool has(std::string_view key) const;
  JsonView at(std::string_view key) const;                 // required member
  std::optional<JsonView> get(std::string_view key) const;  // absent or null -> nullopt
  JsonView at(size_t index) const;
  size_t size() const;  // of an array (fails on anything else)

  std::string as_string() const;
  bool as_bool() const;
  int64_t as_int() const;
  // One Unicode scalar value given as a one-character string (Rust `char` fields).
  char32_t as_char() const;

  std::string string_or(std::string_view key, std::string fallback) const;
  bool bool_or(std::string_view key, bool fallback) const;
  int64_t int_or(std::string_view key, int64_t fallback) const;

  void expect_object() const;
  void expect_array() const;

  // The "type" member that selects a component, e.g. "BPE".
  std::string type_tag() const;

  [[noreturn]] void fail_here(std::string_view problem) const;
  // "unsupported value X (supported: a, b, c)".
  [[noreturn]] void fail_unsupported(std::string_view value, std::initializer_list<std::string_view> supported) const;

 private:
  const nlohmann::json* node_;
  std::string file_;
  std::string path_;
};

// Parses a whole JSON file; syntax errors name the file and the byte position.
nlohmann::json parse_json_file(const std::string& file);

}  // namespace tquant::tok
