#include "model/weight_reader.h"

#include "core/error.h"

namespace tquant {

WeightReader::WeightReader(const Checkpoint& checkpoint, std::filesystem::path dir)
    : checkpoint_(checkpoint), dir_(std::move(dir)) {}

std::string WeightReader::resolve(const std::string& name) const {
  for (const auto& p : prefixes_)
    if (checkpoint_.has(p + name)) return p + name;
  return "";
}

bool WeightReader::has(const std::string& name) const { return !resolve(name).empty(); }

Tensor WeightReader::take(const std::string& name, const Shape& expected) const {
  const std::string full = resolve(name);
  if (full.empty()) {
    std::string tried;
    for (const auto& p : prefixes_) tried += (tried.empty() ? "\"" : ", \"") + p + name + "\"";
    fail("{}: the checkpoint has no tensor {} (tried {})", dir_.string(), name, tried);
  }
  const TensorInfo& info = checkpoint_.info(full);
  if (info.shape != expected)
    fail("{}: tensor \"{}\" has shape {}, but config.json implies {}", dir_.string(), full,
         shape_str(info.shape), shape_str(expected));
  return checkpoint_.load_f32(full);
}

Tensor WeightReader::take_optional(const std::string& name, const Shape& expected) const {
  return has(name) ? take(name, expected) : Tensor();
}

Tensor transpose2d(const Tensor& t) {
  const int64_t r = t.dim(0), c = t.dim(1);
  Tensor out({c, r});
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) out[j * r + i] = t[i * c + j];
  return out;
}

Tensor WeightReader::take_transposed(const std::string& name, const Shape& stored) const {
  return transpose2d(take(name, stored));
}

Linear WeightReader::linear(const std::string& name, int64_t out, int64_t in, bool bias) const {
  Linear l;
  l.weight = take(name + ".weight", {out, in});
  if (bias) l.bias = take(name + ".bias", {out});
  return l;
}

Norm WeightReader::norm(const std::string& weight, const std::string& bias, int64_t d) const {
  Norm n;
  n.gamma = take(weight, {d});
  if (!bias.empty()) n.beta = take(bias, {d});
  return n;
}

}  // namespace tquant
