#pragma once
// A token <-> id table shared by the BPE and WordPiece models; lookups take string_views so the
// hot loops never allocate.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tquant::tok {

class JsonView;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

class Vocab {
 public:
  // Later entries win when a token repeats, as a Rust HashMap built from the list would.
  void add(std::string token, int32_t id);
  // From a JSON object {"token": id, ...}.
  static Vocab from_json(const JsonView& json);

  std::optional<int32_t> find(std::string_view token) const {
    auto it = map_.find(token);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  const std::string* token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= tokens_.size() || !present_[id]) return nullptr;
    return &tokens_[id];
  }
  size_t size() const { return map_.size(); }
  int32_t id_bound() const { return static_cast<int32_t>(tokens_.size()); }

 private:
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> map_;
  std::vector<std::string> tokens_;
  std::vector<bool> present_;
};

}  // namespace tquant::tok
