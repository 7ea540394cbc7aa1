// Checkpoint: the weights of a model folder, one safetensors file or several shards.
#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "core/text_file.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "io/safetensors_detail.h"

namespace tquant {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

bool is_pickle_name(const std::string& name) {
  if (name == "pytorch_model.bin.index.json") return true;
  for (const char* ext : {".bin", ".pt", ".pth", ".ckpt"}) {
    const std::string e(ext);
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0)
      return true;
  }
  return false;
}

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const std::string& item : items) s += (s.empty() ? "" : ", ") + item;
  return s;
}

// Explains why a folder without model.safetensors or its index cannot be opened.
[[noreturn]] void fail_nothing_loadable(const fs::path& dir) {
  std::vector<std::string> pickles, other_safetensors;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    if (is_pickle_name(name)) pickles.push_back(name);
    if (entry.path().extension() == ".safetensors") other_safetensors.push_back(name);
  }
  std::sort(pickles.begin(), pickles.end());
  std::sort(other_safetensors.begin(), other_safetensors.end());
  if (!other_safetensors.empty())
    fail("{}: no {} or {}, but found {}; rename a single-file checkpoint to {}", dir.string(),
         kSingleFile, kIndexFile, join(other_safetensors), kSingleFile);
  if (!pickles.empty())
    fail("{}: only pickle checkpoints here ({}). tquant refuses them: loading a pickle can execute "
         "arbitrary code. Convert once, in Python, in an environment you trust: "
         "`AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, "
         "safe_serialization=True)`, or for a bare state dict `from safetensors.torch import "
         "save_file; save_file(torch.load(path, weights_only=True), \"{}/{}\")`",
         dir.string(), join(pickles), dir.string(), kSingleFile);
  fail("{}: no weights found: looked for {} and {}", dir.string(), kSingleFile, kIndexFile);
}

// Shard names come from a file we did not write: keep them inside the model folder.
void check_shard_name(const std::string& shard, const std::string& tensor, const fs::path& index) {
  const fs::path p(shard);
  bool escapes = shard.empty() || p.is_absolute();
  for (const fs::path& part : p) escapes |= part == "..";
  if (escapes)
    fail("{}: tensor \"{}\": shard \"{}\" is not a file name inside the model folder",
         index.string(), tensor, shard);
}

}  // namespace

Checkpoint Checkpoint::open(const fs::path& dir) {
  if (!fs::exists(dir)) fail("{}: no such folder", dir.string());
  if (!fs::is_directory(dir))
    fail("{}: not a folder (give the model folder that holds config.json and {})", dir.string(),
         kSingleFile);

  Checkpoint ckpt;
  ckpt.dir_ = dir;
  if (fs::exists(dir / kSingleFile)) {
    ckpt.files_.push_back(std::make_shared<SafetensorsFile>(dir / kSingleFile));
    for (const TensorInfo& t : ckpt.files_[0]->tensors()) ckpt.owner_[t.name] = 0;
    ckpt.find_aliases();
    return ckpt;
  }
  const fs::path index = dir / kIndexFile;
  if (!fs::exists(index)) fail_nothing_loadable(dir);

  const json root = safetensors_detail::parse_json_unique_keys(read_text_file(index), index.string());
  if (!root.is_object() || !root.contains("weight_map") || !root["weight_map"].is_object())
    fail("{}: expected an object with a \"weight_map\" object (tensor name -> shard file)",
         index.string());
  const json& weight_map = root["weight_map"];
  if (weight_map.empty()) fail("{}: \"weight_map\" lists no tensors", index.string());

  // shard file -> the tensors the index puts there (in name order, as the JSON object is sorted)
  std::map<std::string, std::vector<std::string>> listed;
  for (const auto& [tensor, shard] : weight_map.items()) {
    if (!shard.is_string())
      fail("{}: tensor \"{}\": the shard must be a file name string, not a {}", index.string(),
           tensor, shard.type_name());
    check_shard_name(shard.get<std::string>(), tensor, index);
    listed[shard.get<std::string>()].push_back(tensor);
  }

  for (const auto& [shard, tensors] : listed) {
    const fs::path path = dir / shard;
    if (!fs::is_regular_file(path))
      fail("{}: shard \"{}\" is missing from {} (the index puts {} tensors there, e.g. \"{}\")",
           index.string(), shard, dir.string(), tensors.size(), tensors.front());
    ckpt.files_.push_back(std::make_shared<SafetensorsFile>(path));
  }

  // The index is only a table of contents: check it against what the shards really hold.
  for (size_t i = 0; i < ckpt.files_.size(); ++i) {
    for (const TensorInfo& t : ckpt.files_[i]->tensors()) {
      auto [it, inserted] = ckpt.owner_.emplace(t.name, i);
      if (!inserted)
        fail("{}: tensor \"{}\" is in two shards, {} and {}; which one is meant is ambiguous",
             dir.string(), t.name, ckpt.files_[it->second]->path().filename().string(),
             ckpt.files_[i]->path().filename().string());
    }
  }
  size_t i = 0;
  for (const auto& [shard, tensors] : listed) {
    const SafetensorsFile& file = *ckpt.files_[i++];
    for (const std::string& tensor : tensors)
      if (!file.find(tensor))
        fail("{}: tensor \"{}\" is listed in shard \"{}\", but that file does not contain it",
             index.string(), tensor, shard);
    if (file.tensors().size() != tensors.size()) {
      const std::set<std::string> expected(tensors.begin(), tensors.end());
      for (const TensorInfo& t : file.tensors())
        if (!expected.count(t.name))
          fail("{}: shard \"{}\" holds tensor \"{}\", which the index does not put there",
               index.string(), shard, t.name);
    }
  }
  ckpt.find_aliases();
  return ckpt;
}

void Checkpoint::find_aliases() {
  for (const auto& file : files_)
    for (const auto& [key, value] : file->metadata())
      if (!owner_.count(key) && owner_.count(value)) aliases_[key] = value;
}

const std::string& Checkpoint::stored_name(const std::string& name) const {
  if (owner_.count(name)) return owner_.find(name)->first;
  auto alias = aliases_.find(name);
  if (alias == aliases_.end())
    fail("no tensor \"{}\" in the checkpoint {} ({} tensors)", name, dir_.string(),
         owner_.size() + aliases_.size());
  return alias->second;
}

const SafetensorsFile& Checkpoint::file_of(const std::string& stored) const {
  return *files_[owner_.at(stored)];
}

bool Checkpoint::has(const std::string& name) const {
  return owner_.count(name) > 0 || aliases_.count(name) > 0;
}

const TensorInfo& Checkpoint::info(const std::string& name) const {
  const std::string& stored = stored_name(name);
  return *file_of(stored).find(stored);
}

Tensor Checkpoint::load_f32(const std::string& name) const {
  const std::string& stored = stored_name(name);
  return file_of(stored).load_f32(stored);
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> names;
  names.reserve(owner_.size() + aliases_.size());
  for (const auto& [name, file] : owner_) names.push_back(name);
  for (const auto& [name, stored] : aliases_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

const std::map<std::string, std::string>& Checkpoint::metadata() const {
  static const std::map<std::string, std::string> kEmpty;
  return files_.empty() ? kEmpty : files_.front()->metadata();
}

}  // namespace tquant
