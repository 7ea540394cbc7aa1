#include "tokenize/json_view.h"

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "tokenize/unicode.h"

namespace tquant::tok {

namespace {

const char* kind(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::boolean: return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "an integer";
    case nlohmann::json::value_t::number_float: return "a number";
    default: return "a JSON value";
  }
}

}  // namespace

JsonView::JsonView(const nlohmann::json& node, std::string file, std::string path)
    : node_(&node), file_(std::move(file)), path_(std::move(path)) {}

std::string JsonView::where() const { return path_.empty() ? file_ : file_ + ": " + path_; }

void JsonView::fail_here(std::string_view problem) const { fail("{}: {}", where(), problem); }

void JsonView::fail_unsupported(std::string_view value, std::initializer_list<std::string_view> supported) const {
  std::string list;
  for (auto s : supported) {
    if (!list.empty()) list += ", ";
    list += s;
  }
  fail("{}: unsupported value \"{}\" (supported: {})", where(), value, list);
}

void JsonView::expect_object() const {
  if (!node_->is_object()) fail_here(fmt::format("expected an object, found {}", kind(*node_)));
}

void JsonView::expect_array() const {
  if (!node_->is_array()) fail_here(fmt::format("expected an array, found {}", kind(*node_)));
}

bool JsonView::has(std::string_view key) const {
  if (!node_->is_object()) return false;
  auto it = node_->find(key);
  return it != node_->end() && !it->is_null();
}

JsonView JsonView::at(std::string_view key) const {
  expect_object();
  auto it = node_->find(key);
  const std::string child = path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  if (it == node_->end()) fail("{}: missing field \"{}\"", where(), key);
  return JsonView(*it, file_, child);
}

std::optional<JsonView> JsonView::get(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return at(key);
}

JsonView JsonView::at(size_t index) const {
  expect_array();
  if (index >= node_->size()) fail_here(fmt::format("index {} out of range", index));
  return JsonView((*node_)[index], file_, fmt::format("{}[{}]", path_, index));
}

size_t JsonView::size() const {
  expect_array();
  return node_->size();
}

std::string JsonView::as_string() const {
  if (!node_->is_string()) fail_here(fmt::format("expected a string, found {}", kind(*node_)));
  return node_->get<std::string>();
}

bool JsonView::as_bool() const {
  if (!node_->is_boolean()) fail_here(fmt::format("expected true or false, found {}", kind(*node_)));
  return node_->get<bool>();
}

int64_t JsonView::as_int() const {
  if (!node_->is_number_integer()) fail_here(fmt::format("expected an integer, found {}", kind(*node_)));
  return node_->get<int64_t>();
}

char32_t JsonView::as_char() const {
  const std::string s = as_string();
  size_t i = 0;
  if (s.empty()) fail_here("expected a single character, found an empty string");
  const char32_t c = unicode::next_code_point(s, i);
  if (i != s.size()) fail_here(fmt::format("expected a single character, found \"{}\"", s));
  return c;
}

std::string JsonView::string_or(std::string_view key, std::string fallback) const {
  auto v = get(key);
  return v ? v->as_string() : std::move(fallback);
}

bool JsonView::bool_or(std::string_view key, bool fallback) const {
  auto v = get(key);
  return v ? v->as_bool() : fallback;
}

int64_t JsonView::int_or(std::string_view key, int64_t fallback) const {
  auto v = get(key);
  return v ? v->as_int() : fallback;
}

std::string JsonView::type_tag() const {
  expect_object();
  return at("type").as_string();
}

nlohmann::json parse_json_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("{}: cannot open file", file);
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    return nlohmann::json::parse(buffer.str());
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: malformed JSON at byte {}: {}", file, e.byte, e.what());
  }
}

}  // namespace tquant::tok
