#include "train/checkpoint.h"

#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/temp_dir.h"
#include "core/text_file.h"

namespace tquant::train {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

std::vector<TensorToWrite> parameter_tensors(const std::vector<Parameter>& params) {
  std::vector<TensorToWrite> out;
  for (const Parameter& p : params) out.push_back(f32_tensor(p.name, p.value));
  return out;
}

namespace {

void write_json(const fs::path& path, const json& j) {
  std::ofstream f(path, std::ios::binary);
  f << j.dump(2) << "\n";
  f.close();
  if (!f) fail("{}: write failed (disk full?)", path.string());
}

}  // namespace

void write_training_folder(const fs::path& out, const json& config, const std::vector<TensorToWrite>& model_tensors,
                           const fs::path& tokenizer_dir, const json& trainer_state, const AdamW* optimizer,
                           const std::vector<Parameter>* params,
                           const std::vector<std::pair<std::string, std::string>>& extra_files) {
  TempDir tmp(TempDir::path_beside(out));
  const fs::path dir = tmp.path();
  write_json(dir / "config.json", config);
  write_safetensors(dir / "model.safetensors", model_tensors, {{"format", "pt"}});
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                           "vocab.json", "merges.txt"}) {
    if (tokenizer_dir.empty() || !fs::is_regular_file(tokenizer_dir / name)) continue;
    std::error_code ec;
    fs::copy_file(tokenizer_dir / name, dir / name, fs::copy_options::none, ec);
    if (ec) fail("{}: cannot copy {}: {}", out.string(), (tokenizer_dir / name).string(), ec.message());
  }
  if (optimizer) {
    std::vector<TensorToWrite> moments;
    for (size_t i = 0; i < params->size(); ++i) {
      moments.push_back(f32_tensor("m." + (*params)[i].name, optimizer->first_moments()[i]));
      moments.push_back(f32_tensor("v." + (*params)[i].name, optimizer->second_moments()[i]));
    }
    write_safetensors(dir / kOptimizerFile, moments, {{"steps", std::to_string(optimizer->steps())}});
  }
  for (const auto& [name, text] : extra_files) write_text_atomically(dir / name, text);
  write_json(dir / kTrainerStateFile, trainer_state);
  tmp.move_to(out);
}

void check_training_output(const fs::path& out, bool resume) {
  std::error_code ec;
  const bool exists = fs::exists(out, ec);
  const bool is_training = exists && fs::is_regular_file(out / kTrainerStateFile, ec);
  if (resume) {
    if (!is_training) fail("{}: --resume needs a training folder holding {}", out.string(), kTrainerStateFile);
    return;
  }
  if (!exists) return;
  if (!fs::is_directory(out, ec)) fail("{}: exists and is not a folder", out.string());
  if (fs::is_empty(out, ec)) return;
  if (is_training)
    fail("{}: holds a training run; pass --resume to continue it, or choose another --out", out.string());
  fail("{}: exists and is not empty; choose another --out", out.string());
}

json read_trainer_state(const fs::path& dir) {
  const fs::path path = dir / kTrainerStateFile;
  try {
    json j = json::parse(read_text_file(path, "trainer state"));
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer())
      fail("{}: field \"step\" is missing or not an integer", path.string());
    return j;
  } catch (const json::exception& e) {
    fail("{}: not valid JSON: {}", path.string(), e.what());
  }
}

void restore_optimizer(const fs::path& dir, const std::vector<Parameter>& params, int64_t steps, AdamW& optimizer) {
  const fs::path path = dir / kOptimizerFile;
  if (!fs::is_regular_file(path))
    fail("{}: missing; the run finished (or was saved without optimizer state) and cannot be resumed", path.string());
  SafetensorsFile f(path);
  std::vector<Tensor> m, v;
  for (const Parameter& p : params) {
    for (const char* kind : {"m.", "v."})
      if (!f.find(kind + p.name)) fail("{}: tensor \"{}{}\" is missing", path.string(), kind, p.name);
    m.push_back(f.load_f32("m." + p.name).clone());
    v.push_back(f.load_f32("v." + p.name).clone());
  }
  optimizer.restore(steps, m, v);
}

}  // namespace tquant::train
