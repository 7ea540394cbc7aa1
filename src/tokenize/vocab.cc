#include "tokenize/vocab.h"

#include "core/error.h"
#include "tokenize/json_view.h"

namespace tquant::tok {

void Vocab::add(std::string token, int32_t id) {
  auto [it, inserted] = map_.try_emplace(token, id);
  if (!inserted) {
    const int32_t old = it->second;
    if (tokens_[old] == token) present_[old] = false;
    it->second = id;
  }
  if (static_cast<size_t>(id) >= tokens_.size()) {
    tokens_.resize(static_cast<size_t>(id) + 1);
    present_.resize(static_cast<size_t>(id) + 1, false);
  }
  tokens_[id] = std::move(token);
  present_[id] = true;
}

Vocab Vocab::from_json(const JsonView& json) {
  json.expect_object();
  Vocab v;
  v.map_.reserve(json.raw().size());
  // Ids are dense in every real vocabulary; a wildly larger one is a corrupt file, not a reason
  // to allocate gigabytes.
  const int64_t id_limit = 16 * static_cast<int64_t>(json.raw().size()) + 65536;
  for (auto it = json.raw().begin(); it != json.raw().end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
      fail("{}: token \"{}\": expected a non-negative integer id", json.where(), it.key());
    if (it.value().get<int64_t>() >= id_limit)
      fail("{}: token \"{}\": id {} is far beyond the {} entries", json.where(), it.key(),
           it.value().get<int64_t>(), json.raw().size());
    v.add(it.key(), static_cast<int32_t>(it.value().get<int64_t>()));
  }
  return v;
}

}  // namespace tquant::tok
