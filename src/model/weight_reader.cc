#include "model/weight_reader.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/qblock_formats.h"
#include "wquant/quantized_checkpoint.h"

namespace tquant {

using wq::WeightFormat;

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
  if (is_quantized(name)) {
    wq::QuantizedWeight q = take_quantized(name, out, in);
    if (keep_packed_) {
      const WeightFormat& f = q.grid.format;
      l.packed = std::make_shared<const PackedMatrix>(PackedMatrix::from_codes(
          f.bits, f.group, out, in, q.codes, q.grid.scale, q.grid.zero, dir_.string() + ": " + name));
      if (!q.zeta.empty()) {
        l.input_scale = Tensor({in});
        std::copy(q.zeta.begin(), q.zeta.end(), l.input_scale.data());
      }
    } else {
      l.weight = q.dequantize();
    }
  } else {
    l.weight = take(name + ".weight", {out, in});
  }
  l.source.weight = weight_name(name);
  if (bias) {
    l.bias = take(name + ".bias", {out});
    l.source.bias = full_name(name + ".bias");
  }
  return l;
}

Norm WeightReader::norm(const std::string& weight, const std::string& bias, int64_t d) const {
  Norm n;
  n.gamma = take(weight, {d});
  n.source.weight = full_name(weight);
  if (!bias.empty()) {
    n.beta = take(bias, {d});
    n.source.bias = full_name(bias);
  }
  return n;
}

std::string WeightReader::full_name(const std::string& name) const {
  const std::string full = resolve(name);
  return full.empty() ? name : full;
}

bool WeightReader::is_quantized(const std::string& prefix) const {
  const std::string q = resolve(prefix + ".qweight");
  if (q.empty()) return false;
  if (!quant_)
    fail("{}: tensor \"{}\" holds packed quantized codes, but config.json has no quantization_config "
         "with quant_method \"{}\"", dir_.string(), q, wq::kQuantMethod);
  return true;
}

std::string WeightReader::weight_name(const std::string& prefix) const {
  const std::string q = quant_ ? resolve(prefix + ".qweight") : std::string();
  if (!q.empty()) return q.substr(0, q.size() - std::string(".qweight").size()) + ".weight";
  return full_name(prefix + ".weight");
}

Tensor WeightReader::take_dequantized(const std::string& prefix, int64_t out, int64_t in) const {
  return take_quantized(prefix, out, in).dequantize();
}

wq::QuantizedWeight WeightReader::take_quantized(const std::string& prefix, int64_t out, int64_t in) const {
  const std::string q = resolve(prefix + ".qweight");
  if (q.empty() || !quant_) fail("{}: layer \"{}\" is not stored quantized", dir_.string(), prefix);
  const std::string p = q.substr(0, q.size() - std::string(".qweight").size());
  const auto it = quant_->modules.find(p);
  if (it == quant_->modules.end())
    fail("{}: tensor \"{}\" holds packed codes, but {} does not list \"{}\" in quantization_config.modules",
         dir_.string(), q, quant_->config_path.string(), p);
  if (checkpoint_.has(p + ".weight"))
    fail("{}: layer \"{}\" is stored twice, as \"{}.weight\" and as \"{}\"", dir_.string(), p, p, q);
  quantized_used_.insert(p);
  return wq::read_quantized_linear(checkpoint_, p, it->second, out, in);
}

void WeightReader::check_quantized_modules_used() const {
  if (!quant_) return;
  for (const auto& [module, format] : quant_->modules)
    if (!quantized_used_.count(module))
      fail("{}: quantization_config.modules lists \"{}\", but the model has no such quantized layer "
           "(no \"{}.qweight\" in the checkpoint, or a layer this architecture does not read)",
           quant_->config_path.string(), module, module);
}

}  // namespace tquant
