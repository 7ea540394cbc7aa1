#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/safetensors_detail.h"

namespace tquant::safetensors_detail {

using nlohmann::json;

namespace {

// One open object while parsing: the keys seen so far and the key it sits under.
struct OpenObject {
  std::string name;
  std::vector<std::string> keys;  // objects are small (a tensor entry has 3 keys) except the top
  std::string last_key;
};

}  // namespace

json parse_json_unique_keys(std::string_view text, const std::string& where) {
  std::vector<OpenObject> open;
  // The top-level object can hold ~10^5 tensor names, so it gets a sorted set, not a scan.
  std::vector<std::string> top_sorted;
  auto check_key = [&](const std::string& key) {
    OpenObject& obj = open.back();
    bool seen = false;
    if (open.size() == 1) {
      auto it = std::lower_bound(top_sorted.begin(), top_sorted.end(), key);
      seen = it != top_sorted.end() && *it == key;
      if (!seen) top_sorted.insert(it, key);
    } else {
      seen = std::find(obj.keys.begin(), obj.keys.end(), key) != obj.keys.end();
      if (!seen) obj.keys.push_back(key);
    }
    if (seen) {
      if (open.size() == 1)
        fail("{}: duplicate key \"{}\": it appears twice at the top level (JSON readers disagree "
             "on which one wins, so the file is ambiguous)", where, key);
      fail("{}: duplicate key \"{}\": it appears twice inside \"{}\" (JSON readers disagree on "
           "which one wins, so the file is ambiguous)", where, key, obj.name);
    }
    obj.last_key = key;
  };

  json::parser_callback_t callback = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open.push_back({open.empty() ? std::string() : open.back().last_key, {}, {}});
        break;
      case json::parse_event_t::object_end:
        open.pop_back();
        break;
      case json::parse_event_t::key:
        check_key(parsed.get<std::string>());
        break;
      default:
        break;
    }
    return true;
  };

  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    fail("{}: not valid JSON: {}", where, e.what());
  }
}

}  // namespace tquant::safetensors_detail
