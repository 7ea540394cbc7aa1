#include "core/text_file.h"
#include "wquant/quantized_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/temp_dir.h"
#include "io/half.h"
#include "wquant/packing.h"

namespace tquant::wq {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

template <class J>
J parse_json_file(const fs::path& path) {
  const std::string text = read_text_file(path);
  try {
    return J::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", path.string(), e.what());
  }
}

// ------------------------------------------------------------------------------------------
// quantization_config
// ------------------------------------------------------------------------------------------

int int_field(const json& q, const char* key, const fs::path& path, bool required, int fallback) {
  if (!q.contains(key) || q[key].is_null()) {
    if (required) fail("{}: quantization_config.{} is missing", path.string(), key);
    return fallback;
  }
  if (!q[key].is_number_integer())
    fail("{}: quantization_config.{} must be an integer, found {}", path.string(), key, q[key].dump());
  const int64_t v = q[key].get<int64_t>();
  if (v < -1 || v > (int64_t{1} << 30)) fail("{}: quantization_config.{} = {} is out of range", path.string(), key, v);
  return static_cast<int>(v);
}

bool bool_field(const json& q, const char* key, const fs::path& path, bool required, bool fallback) {
  if (!q.contains(key) || q[key].is_null()) {
    if (required) fail("{}: quantization_config.{} is missing", path.string(), key);
    return fallback;
  }
  if (!q[key].is_boolean())
    fail("{}: quantization_config.{} must be true or false, found {}", path.string(), key, q[key].dump());
  return q[key].get<bool>();
}

WeightFormat parse_format(const json& q, const fs::path& path, const std::string& what, const WeightFormat* base) {
  WeightFormat f;
  f.bits = int_field(q, "bits", path, base == nullptr, base ? base->bits : 0);
  if (f.bits < kMinWeightBits || f.bits > kMaxWeightBits)
    fail("{}: {}bits = {} is not supported (tquant writes {}..{} bits)", path.string(), what, f.bits,
         kMinWeightBits, kMaxWeightBits);
  const int64_t g = int_field(q, "group_size", path, base == nullptr, base ? static_cast<int>(base->group) : 0);
  f.group = g <= 0 ? 0 : g;  // -1 (as GPTQ writes it) or 0: one group per row
  f.symmetric = bool_field(q, "sym", path, base == nullptr, base ? base->symmetric : false);
  f.fp16 = bool_field(q, "fp16_grid", path, false, base ? base->fp16 : false);  // absent before GGUF export
  return f;
}

int32_t symmetric_zero(int bits) { return 1 << (bits - 1); }

// ------------------------------------------------------------------------------------------
// Reading one quantized linear
// ------------------------------------------------------------------------------------------

const SafetensorsFile& file_holding(const Checkpoint& ckpt, const std::string& stored) {
  for (const auto& f : ckpt.files())
    if (f->find(stored)) return *f;
  fail("{}: no tensor \"{}\"", ckpt.dir().string(), stored);
}

struct Located {
  const SafetensorsFile* file;
  const TensorInfo* info;
  std::string where;  // "<file>: tensor \"<name>\""
};

Located locate(const Checkpoint& ckpt, const std::string& name) {
  if (!ckpt.has(name)) fail("{}: the quantized checkpoint has no tensor \"{}\"", ckpt.dir().string(), name);
  const std::string& stored = ckpt.stored_name(name);
  const SafetensorsFile& file = file_holding(ckpt, stored);
  return {&file, file.find(stored), fmt::format("{}: tensor \"{}\"", file.path().string(), stored)};
}

void expect(const Located& t, DType dtype, const Shape& shape) {
  if (t.info->dtype != dtype)
    fail("{} has dtype {}, but the tquant format stores it as {}", t.where, dtype_name(t.info->dtype),
         dtype_name(dtype));
  if (t.info->shape != shape)
    fail("{} has shape {}, but the layer and quantization_config imply {}", t.where, shape_str(t.info->shape),
         shape_str(shape));
}

// ------------------------------------------------------------------------------------------
// Writing
// ------------------------------------------------------------------------------------------

TensorToWrite bytes_tensor(const std::string& name, DType dtype, Shape shape, const void* data, size_t n) {
  TensorToWrite t{name, dtype, std::move(shape), std::vector<std::byte>(n)};
  if (n) std::memcpy(t.bytes.data(), data, n);
  return t;
}

TensorToWrite f32_vector(const std::string& name, Shape shape, const std::vector<float>& v) {
  return bytes_tensor(name, DType::F32, std::move(shape), v.data(), v.size() * sizeof(float));
}

// The narrower dtype the input stored `name` in, when every value survives it exactly; else F32.
TensorToWrite fp_tensor(const std::string& name, const Tensor& value, const Checkpoint& input, bool allow_narrow) {
  if (allow_narrow && input.has(name) && input.stored_name(name) == name) {
    const DType d = input.info(name).dtype;
    if (d == DType::F16 || d == DType::BF16) {
      TensorToWrite t = d == DType::F16 ? f16_tensor(name, value) : bf16_tensor(name, value);
      bool exact = true;
      for (int64_t i = 0; i < value.numel() && exact; ++i) {
        uint16_t h;
        std::memcpy(&h, t.bytes.data() + 2 * i, 2);
        const float back = d == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
        exact = std::memcmp(&back, value.data() + i, sizeof(float)) == 0;
      }
      if (exact) return t;
    }
  }
  return f32_tensor(name, value);
}

std::string prefix_of(const std::string& weight_name, const std::string& layer) {
  const std::string suffix = ".weight";
  if (weight_name.size() <= suffix.size() ||
      weight_name.compare(weight_name.size() - suffix.size(), suffix.size(), suffix) != 0)
    fail("layer {}: its checkpoint tensor \"{}\" does not end in \".weight\"; cannot name its quantized tensors",
         layer, weight_name);
  return weight_name.substr(0, weight_name.size() - suffix.size());
}

void check_quantized(const QuantizedWeight& q, const Linear& l) {
  const std::string& n = l.name;
  const WeightFormat& f = q.grid.format;
  check_format(f, q.grid.cols, n.c_str());
  if (q.grid.rows != l.out() || q.grid.cols != l.in())
    fail("{}: quantized weight is [{}, {}], but the layer is [{}, {}]", n, q.grid.rows, q.grid.cols, l.out(), l.in());
  const int64_t R = q.grid.rows, C = q.grid.cols, gpr = f.groups_per_row(C), G = R * gpr;
  if (static_cast<int64_t>(q.codes.size()) != R * C)
    fail("{}: {} codes for a [{}, {}] weight", n, q.codes.size(), R, C);
  if (static_cast<int64_t>(q.grid.scale.size()) != G || static_cast<int64_t>(q.grid.zero.size()) != G)
    fail("{}: {} scales and {} zero points, expected {}", n, q.grid.scale.size(), q.grid.zero.size(), G);
  if (!q.zeta.empty() && static_cast<int64_t>(q.zeta.size()) != C)
    fail("{}: zeta has {} entries, expected {} (one per input column) or none", n, q.zeta.size(), C);
  const int32_t maxq = f.max_code();
  for (int64_t i = 0; i < G; ++i) {
    const float s = q.grid.scale[i], z = q.grid.zero[i];
    if (!std::isfinite(s) || !(s > 0))
      fail("{}: scale {} (row {}, group {}) must be finite and > 0", n, s, i / gpr, i % gpr);
    if (!(z >= 0 && z <= static_cast<float>(maxq) && z == std::floor(z)))
      fail("{}: zero point {} (row {}, group {}) is not an integer in 0..{}", n, z, i / gpr, i % gpr, maxq);
    if (f.symmetric && z != static_cast<float>(symmetric_zero(f.bits)))
      fail("{}: symmetric format, but zero point {} (row {}) is not {}", n, z, i / gpr, symmetric_zero(f.bits));
    if (!is_fp16_grid_point(f, s, z))
      fail("{}: fp16 grid, but the scale {} (row {}, group {}) or the offset -scale*zero is not an fp16 value", n, s,
           i / gpr, i % gpr);
  }
  for (int64_t c = 0; c < static_cast<int64_t>(q.zeta.size()); ++c)
    if (!std::isfinite(q.zeta[c])) fail("{}: zeta[{}] = {} is not finite", n, c, q.zeta[c]);
  for (int64_t i = 0; i < R * C; ++i)
    if (q.codes[i] > maxq)
      fail("{}: code {} at row {}, column {} exceeds {} for {} bits", n, q.codes[i], i / C, i % C, maxq, f.bits);
}

bool same_format(const WeightFormat& a, const WeightFormat& b) {
  return a.bits == b.bits && a.group == b.group && a.symmetric == b.symmetric && a.fp16 == b.fp16;
}

// Rows of several [rows_i, cols] matrices (or codes) stacked.
void append(std::vector<float>& to, const std::vector<float>& from) { to.insert(to.end(), from.begin(), from.end()); }

Tensor stack_rows(const std::vector<Tensor>& parts) {
  int64_t rows = 0;
  for (const Tensor& p : parts) rows += p.dim(0);
  const int64_t cols = parts.front().dim(1);
  Tensor out = Tensor::uninitialized({rows, cols});
  int64_t at = 0;
  for (const Tensor& p : parts) {
    std::memcpy(out.data() + at, p.data(), sizeof(float) * p.numel());
    at += p.numel();
  }
  return out;
}

Tensor transpose(const Tensor& t) {
  const int64_t r = t.dim(0), c = t.dim(1);
  Tensor out = Tensor::uninitialized({c, r});
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) out[j * r + i] = t[i * c + j];
  return out;
}

bool is_tquant_output(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_regular_file(dir / "config.json", ec)) return false;
  try {
    const json c = json::parse(read_text_file(dir / "config.json"));
    if (!c.is_object()) return false;
    if (c.contains("tquant") && c["tquant"].is_object()) return true;
    return c.contains("quantization_config") && c["quantization_config"].is_object() &&
           c["quantization_config"].value("quant_method", "") == kQuantMethod;
  } catch (...) {
    return false;
  }
}

bool is_within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // trailing separator
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

bool is_pickle_or_weights(const std::string& name) {
  if (name == "pytorch_model.bin.index.json" || name == "model.safetensors.index.json") return true;
  for (const char* ext : {".bin", ".pt", ".pth", ".ckpt", ".safetensors", ".h5", ".msgpack", ".gguf"}) {
    const std::string e(ext);
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) return true;
  }
  return false;
}

// One tensor of the model's state, before tie resolution.
struct FpSlot {
  std::string name;
  Tensor value;                  // in the stored layout
  const void* identity;          // the model storage it shows (tied tensors share one); nullptr = own
  bool narrow_ok;                // may keep the input's F16/BF16 when exact
};

struct QuantizedModule {
  std::string prefix;
  WeightFormat format;
};

}  // namespace

std::optional<QuantizationConfig> parse_quantization_config(const json& config, const fs::path& path) {
  if (!config.is_object() || !config.contains("quantization_config") || config["quantization_config"].is_null())
    return std::nullopt;
  const json& q = config["quantization_config"];
  if (!q.is_object()) fail("{}: quantization_config must be an object, found {}", path.string(), q.dump());
  if (!q.contains("quant_method") || !q["quant_method"].is_string())
    fail("{}: quantization_config has no quant_method string; tquant reads only its own \"{}\" format",
         path.string(), kQuantMethod);
  const std::string method = q["quant_method"].get<std::string>();
  if (method != kQuantMethod)
    fail("{}: quantization_config.quant_method is \"{}\", which tquant does not support: it reads FP checkpoints "
         "and its own \"{}\" quantized format only. Use the original FP model (or dequantize this one with the "
         "tool that wrote it)", path.string(), method, kQuantMethod);
  const int version = int_field(q, "format_version", path, true, 0);
  if (version != kFormatVersion)
    fail("{}: quantization_config.format_version {} is not supported (this tquant reads version {})", path.string(),
         version, kFormatVersion);

  QuantizationConfig out;
  out.config_path = path;
  out.format = parse_format(q, path, "quantization_config.", nullptr);
  if (!q.contains("modules") || !q["modules"].is_array())
    fail("{}: quantization_config.modules must be a list of layer names", path.string());
  for (const json& m : q["modules"]) {
    if (!m.is_string() || m.get<std::string>().empty())
      fail("{}: quantization_config.modules: {} is not a layer name", path.string(), m.dump());
    if (!out.modules.emplace(m.get<std::string>(), out.format).second)
      fail("{}: quantization_config.modules lists \"{}\" twice", path.string(), m.get<std::string>());
  }
  if (q.contains("overrides") && !q["overrides"].is_null()) {
    if (!q["overrides"].is_object())
      fail("{}: quantization_config.overrides must be an object (layer -> format)", path.string());
    for (const auto& [name, o] : q["overrides"].items()) {
      auto it = out.modules.find(name);
      if (it == out.modules.end())
        fail("{}: quantization_config.overrides names \"{}\", which modules does not list", path.string(), name);
      if (!o.is_object()) fail("{}: quantization_config.overrides.\"{}\" must be an object", path.string(), name);
      it->second = parse_format(o, path, "quantization_config.overrides.\"" + name + "\".", &out.format);
    }
  }
  return out;
}

std::optional<QuantizationConfig> read_quantization_config(const fs::path& config_json) {
  return parse_quantization_config(parse_json_file<json>(config_json), config_json);
}

QuantizedWeight read_quantized_linear(const Checkpoint& ckpt, const std::string& prefix, const WeightFormat& f,
                                      int64_t out, int64_t in) {
  const Located qw = locate(ckpt, prefix + ".qweight");
  check_format(f, in, qw.where.c_str());
  const int64_t groups = f.groups_per_row(in);
  const int32_t maxq = f.max_code();

  QuantizedWeight q;
  q.grid.format = f;
  q.grid.rows = out;
  q.grid.cols = in;

  expect(qw, DType::U8, {out, packed_row_bytes(in, f.bits)});
  const auto raw = qw.file->raw(*qw.info);
  q.codes = unpack_codes({reinterpret_cast<const uint8_t*>(raw.data()), raw.size()}, out, in, f.bits, qw.where);

  const Located sc = locate(ckpt, prefix + ".scales");
  expect(sc, DType::F32, {out, groups});
  const Tensor scales = sc.file->load_f32(sc.info->name);  // refuses NaN/Inf, naming the index
  q.grid.scale.assign(scales.data(), scales.data() + scales.numel());
  for (int64_t i = 0; i < scales.numel(); ++i)
    if (!(q.grid.scale[i] > 0))
      fail("{}: scale {} at row {}, group {} must be > 0", sc.where, q.grid.scale[i], i / groups, i % groups);

  const Located zp = locate(ckpt, prefix + ".zeros");
  expect(zp, DType::U8, {out, groups});
  const auto zraw = zp.file->raw(*zp.info);
  q.grid.zero.resize(static_cast<size_t>(out * groups));
  for (int64_t i = 0; i < out * groups; ++i) {
    const auto z = static_cast<int32_t>(static_cast<uint8_t>(zraw[i]));
    if (z > maxq)
      fail("{}: zero point {} at row {}, group {} exceeds {} for {} bits", zp.where, z, i / groups, i % groups, maxq,
           f.bits);
    if (f.symmetric && z != symmetric_zero(f.bits))
      fail("{}: zero point {} at row {}, group {}: the format is symmetric, so it must be {}", zp.where, z,
           i / groups, i % groups, symmetric_zero(f.bits));
    q.grid.zero[i] = static_cast<float>(z);
    if (!is_fp16_grid_point(f, q.grid.scale[i], q.grid.zero[i]))
      fail("{}: quantization_config says fp16_grid, but at row {}, group {} the scale {:.9g} or the offset "
           "-scale*zero (zero point {}) is not an fp16 value", sc.where, i / groups, i % groups, q.grid.scale[i], z);
  }

  if (ckpt.has(prefix + ".zeta")) {
    const Located zt = locate(ckpt, prefix + ".zeta");
    expect(zt, DType::F32, {in});
    const Tensor zeta = zt.file->load_f32(zt.info->name);  // refuses NaN/Inf
    q.zeta.assign(zeta.data(), zeta.data() + zeta.numel());
  }
  return q;
}

void check_output_folder(const fs::path& input, const fs::path& out_dir) {
  const fs::path in = fs::weakly_canonical(fs::absolute(input));
  const fs::path out = fs::weakly_canonical(fs::absolute(out_dir));
  if (is_within(out, in) || is_within(in, out))
    fail("{}: the output folder must not be, contain or lie inside the input model folder {}; the input is "
         "never modified", out_dir.string(), input.string());
  std::error_code ec;
  const fs::file_status st = fs::status(out_dir, ec);
  if (!fs::exists(st)) return;
  if (!fs::is_directory(st)) fail("{}: exists and is not a folder", out_dir.string());
  if (fs::is_empty(out_dir, ec) || is_tquant_output(out_dir)) return;
  fail("{}: exists and is not empty; tquant replaces only an empty folder or one it wrote itself (whose "
       "config.json has quantization_config.quant_method \"tquant\" or a \"tquant\" object). Choose another "
       "folder or delete it", out_dir.string());
}

void write_quantized_checkpoint(const Model& model, const std::map<std::string, QuantizedWeight>& quantized,
                                const json& method_info, const fs::path& out_dir, bool fake) {
  model.require_fp_weights("writing a quantized checkpoint");
  const fs::path& input = model.dir();
  if (input.empty()) fail("{}: the model was not loaded from a folder; nothing to copy the rest from", out_dir.string());
  if (out_dir.empty()) fail("no output folder given");
  if (!method_info.is_null() && !method_info.is_object())
    fail("{}: method_info must be a JSON object, not {}", out_dir.string(), method_info.type_name());
  if (quantized.empty() && !fake)
    fail("{}: no quantized layers to write (write a fake checkpoint for an FP export)", out_dir.string());
  check_output_folder(input, out_dir);

  // Everything from here on happens inside the temporary folder, which goes on any failure.
  TempDir tmp(TempDir::path_beside(out_dir));

  const Checkpoint ckpt = Checkpoint::open(input);
  ordered_json config = parse_json_file<ordered_json>(input / "config.json");
  if (!config.is_object()) fail("{}: not a JSON object", (input / "config.json").string());

  Model& m = const_cast<Model&>(model);  // linears()/norms() only collect pointers
  const std::vector<Linear*> linears = m.linears();
  std::map<std::string, const Linear*> by_name;
  for (const Linear* l : linears) by_name[l->name] = l;
  for (const auto& [name, q] : quantized) {
    const auto it = by_name.find(name);
    if (it == by_name.end()) fail("{}: quantized layer \"{}\" is not a linear layer of the model", out_dir.string(), name);
    check_quantized(q, *it->second);
  }

  std::vector<FpSlot> fp;
  std::vector<TensorToWrite> out;
  std::set<std::string> claimed;   // input tensor names the model accounts for (not copied verbatim)
  std::vector<QuantizedModule> modules;

  auto add_fp = [&](const std::string& name, Tensor value, const void* identity, bool narrow_ok) {
    fp.push_back({name, std::move(value), identity, narrow_ok});
  };

  // Embeddings and norms.
  const std::pair<const Tensor*, const std::string*> embeddings[] = {
      {&model.token_embedding, &model.token_embedding_source},
      {&model.position_embedding, &model.position_embedding_source},
      {&model.type_embedding, &model.type_embedding_source}};
  for (const auto& [t, name] : embeddings) {
    if (t->empty()) continue;
    if (name->empty()) fail("{}: an embedding table has no checkpoint name (the model was not loaded by tquant?)", out_dir.string());
    add_fp(*name, *t, t->data(), true);
  }
  for (Norm* n : m.norms()) {
    if (n->gamma.empty()) continue;
    if (!n->residual_scale.empty())
      fail("{}: norm {} carries a residual scale (Gamma Migration), which a Hugging Face checkpoint cannot express",
           out_dir.string(), n->name);
    if (n->source.weight.empty()) fail("{}: norm {} has no checkpoint name", out_dir.string(), n->name);
    add_fp(n->source.weight, n->gamma, n->gamma.data(), true);
    if (!n->beta.empty()) {
      if (n->source.bias.empty()) fail("{}: norm {} has a bias without a checkpoint name", out_dir.string(), n->name);
      add_fp(n->source.bias, n->beta, n->beta.data(), true);
    }
  }

  // Linear layers, grouped by the stored tensor (GPT-2's c_attn holds three).
  std::vector<std::string> order;
  std::map<std::string, std::vector<const Linear*>> groups;
  for (const Linear* l : linears) {
    if (l->source.weight.empty()) fail("{}: layer {} has no checkpoint name", out_dir.string(), l->name);
    if (!groups.count(l->source.weight)) order.push_back(l->source.weight);
    groups[l->source.weight].push_back(l);
  }
  for (const std::string& wname : order) {
    std::vector<const Linear*> parts = groups[wname];
    std::sort(parts.begin(), parts.end(),
              [](const Linear* a, const Linear* b) { return a->source.row_offset < b->source.row_offset; });
    const Linear& first = *parts.front();
    const std::string prefix = prefix_of(wname, first.name);
    std::string layers;
    for (const Linear* p : parts) layers += (layers.empty() ? "" : ", ") + p->name;
    // The parts must tile the stored tensor's rows exactly, with one input width and layout.
    const int64_t total = first.source.fused_rows > 0 ? first.source.fused_rows : first.out();
    int64_t next = 0;
    for (const Linear* p : parts) {
      if (p->source.row_offset != next || p->in() != first.in() || p->source.transposed != first.source.transposed ||
          (p->source.fused_rows > 0 ? p->source.fused_rows : p->out()) != total ||
          p->source.bias.empty() != first.source.bias.empty() || p->bias.empty() != first.bias.empty())
        fail("{}: layers {} share the checkpoint tensor \"{}\" but do not split it into consecutive row blocks",
             out_dir.string(), layers, wname);
      next += p->out();
    }
    if (next != total)
      fail("{}: layers {} cover {} of the {} rows of \"{}\"", out_dir.string(), layers, next, total, wname);

    size_t n_quantized = 0;
    for (const Linear* p : parts) n_quantized += quantized.count(p->name);
    claimed.insert(wname);
    for (const char* s : {".qweight", ".scales", ".zeros", ".zeta"}) claimed.insert(prefix + s);

    if (n_quantized > 0 && !fake) {
      if (n_quantized != parts.size())
        fail("{}: layers {} are stored as one tensor \"{}\": quantize all of them or none", out_dir.string(), layers,
             wname);
      const QuantizedWeight& q0 = quantized.at(first.name);
      const WeightFormat f = q0.grid.format;
      const int64_t in = first.in(), G = f.groups_per_row(in);
      std::vector<uint8_t> codes;
      std::vector<float> scales, zeros;
      for (const Linear* p : parts) {
        const QuantizedWeight& q = quantized.at(p->name);
        if (!same_format(q.grid.format, f) || q.zeta.size() != q0.zeta.size() ||
            (!q.zeta.empty() && std::memcmp(q.zeta.data(), q0.zeta.data(), q.zeta.size() * sizeof(float)) != 0))
          fail("{}: layers {} are stored as one tensor \"{}\" and need one format and one zeta", out_dir.string(),
               layers, wname);
        codes.insert(codes.end(), q.codes.begin(), q.codes.end());
        append(scales, q.grid.scale);
        append(zeros, q.grid.zero);
      }
      const std::vector<uint8_t> packed = pack_codes(codes, total, in, f.bits, prefix + ".qweight");
      out.push_back(bytes_tensor(prefix + ".qweight", DType::U8, {total, packed_row_bytes(in, f.bits)}, packed.data(),
                                 packed.size()));
      out.push_back(f32_vector(prefix + ".scales", {total, G}, scales));
      std::vector<uint8_t> z8(zeros.size());
      for (size_t i = 0; i < zeros.size(); ++i) z8[i] = static_cast<uint8_t>(zeros[i]);
      out.push_back(bytes_tensor(prefix + ".zeros", DType::U8, {total, G}, z8.data(), z8.size()));
      if (!q0.zeta.empty()) out.push_back(f32_vector(prefix + ".zeta", {in}, q0.zeta));
      modules.push_back({prefix, f});
    } else {
      std::vector<Tensor> rows;
      for (const Linear* p : parts) {
        const auto q = quantized.find(p->name);
        rows.push_back(q != quantized.end() ? q->second.dequantize() : p->weight);
      }
      Tensor value = rows.size() == 1 ? rows.front() : stack_rows(rows);
      if (first.source.transposed) value = transpose(value);
      // A plain unquantized layer shows the model's own storage: tied heads are recognised by it.
      const bool plain = n_quantized == 0 && parts.size() == 1 && !first.source.transposed;
      add_fp(wname, value, plain ? first.weight.data() : nullptr, n_quantized == 0);
      if (n_quantized > 0) modules.push_back({prefix, quantized.at(first.name).grid.format});
    }
    if (!first.bias.empty()) {
      std::vector<Tensor> biases;
      for (const Linear* p : parts) biases.push_back(p->bias.reshaped({1, p->out()}));
      Tensor b = biases.size() == 1 ? first.bias : stack_rows(biases).reshaped({total});
      add_fp(first.source.bias, b, parts.size() == 1 ? first.bias.data() : nullptr, true);
    }
  }

  // Resolve names: a name given twice must be one tensor; tensors sharing storage (tied
  // embeddings) are written once, under the name(s) the input stored.
  std::map<std::string, size_t> by_slot_name;
  std::vector<bool> keep(fp.size(), true);
  for (size_t i = 0; i < fp.size(); ++i) {
    claimed.insert(fp[i].name);
    const auto [it, inserted] = by_slot_name.emplace(fp[i].name, i);
    if (inserted) continue;
    const FpSlot& other = fp[it->second];
    if (fp[i].identity == nullptr || fp[i].identity != other.identity)
      fail("{}: two different parameters map to the checkpoint tensor \"{}\"", out_dir.string(), fp[i].name);
    keep[i] = false;
  }
  auto stored_in_input = [&](const std::string& n) { return ckpt.has(n) && ckpt.stored_name(n) == n; };
  std::map<const void*, std::vector<size_t>> shared;
  for (size_t i = 0; i < fp.size(); ++i)
    if (keep[i] && fp[i].identity) shared[fp[i].identity].push_back(i);
  for (const auto& [id, members] : shared) {
    if (members.size() < 2) continue;
    bool any_stored = false;
    for (size_t i : members) any_stored |= stored_in_input(fp[i].name);
    for (size_t k = 0; k < members.size(); ++k)
      keep[members[k]] = any_stored ? stored_in_input(fp[members[k]].name) : k == 0;
  }
  std::set<std::string> written;
  for (size_t i = 0; i < fp.size(); ++i)
    if (keep[i]) {
      out.push_back(fp_tensor(fp[i].name, fp[i].value, ckpt, fp[i].narrow_ok));
      written.insert(fp[i].name);
    }
  for (const TensorToWrite& t : out) written.insert(t.name);

  // The input's other tensors (buffers such as BERT's position_ids, heads the model ignores),
  // byte for byte.
  for (const auto& file : ckpt.files())
    for (const TensorInfo& t : file->tensors()) {
      if (claimed.count(t.name) || written.count(t.name)) continue;
      const auto raw = file->raw(t);
      out.push_back(bytes_tensor(t.name, t.dtype, t.shape, raw.data(), raw.size()));
      written.insert(t.name);
    }

  // Metadata: keep the input's, but an alias only while it still points at a written tensor and
  // names none.
  std::map<std::string, std::string> input_meta, meta;
  for (const auto& file : ckpt.files())
    for (const auto& [k, v] : file->metadata()) input_meta.emplace(k, v);
  for (const auto& [k, v] : input_meta) {
    const bool alias = !stored_in_input(k) && stored_in_input(v);
    if (alias && (written.count(k) || !written.count(v))) continue;
    if (written.count(k)) continue;
    meta[k] = v;
  }
  meta["format"] = "pt";

  // Wider dtypes first, so that every tensor stays aligned for zero-copy loading.
  std::stable_sort(out.begin(), out.end(), [](const TensorToWrite& a, const TensorToWrite& b) {
    const size_t sa = dtype_size(a.dtype), sb = dtype_size(b.dtype);
    return sa != sb ? sa > sb : a.name < b.name;
  });

  // A quantized or separately changed head no longer shares the embedding: say so, or loaders
  // would tie it back.
  const ModelConfig& c = model.config();
  const Linear& head = c.head == Head::MaskedLM ? model.mlm_decoder : model.lm_head;
  if (c.tie_embeddings && !head.weight.empty() &&
      (quantized.count(head.name) || head.weight.data() != model.token_embedding.data()))
    config["tie_word_embeddings"] = false;

  // config.json
  // The format's own keys first, then the method's description (which cannot override them).
  static const std::set<std::string> kReserved = {"quant_method", "format_version", "fake_quantized", "bits",
                                                  "group_size", "sym", "fp16_grid", "modules", "overrides"};
  ordered_json info = ordered_json::object();
  if (!fake) info["quant_method"] = kQuantMethod;
  info["format_version"] = kFormatVersion;
  if (fake) info["fake_quantized"] = true;
  ordered_json names = ordered_json::array(), overrides = ordered_json::object();
  if (!modules.empty()) {
    // The most common format is the default; the others are overrides.
    std::vector<std::pair<WeightFormat, int>> counts;
    for (const QuantizedModule& q : modules) {
      auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& e) { return same_format(e.first, q.format); });
      if (it == counts.end()) counts.push_back({q.format, 1});
      else ++it->second;
    }
    const WeightFormat def = std::max_element(counts.begin(), counts.end(), [](const auto& a, const auto& b) {
                               return a.second < b.second;
                             })->first;
    info["bits"] = def.bits;
    info["group_size"] = def.group == 0 ? -1 : def.group;
    info["sym"] = def.symmetric;
    if (def.fp16) info["fp16_grid"] = true;  // written only when set: older readers see the same keys
    for (const QuantizedModule& q : modules) {
      names.push_back(q.prefix);
      if (!same_format(q.format, def)) {
        overrides[q.prefix] = {{"bits", q.format.bits},
                               {"group_size", q.format.group == 0 ? -1 : q.format.group},
                               {"sym", q.format.symmetric}};
        if (q.format.fp16 != def.fp16) overrides[q.prefix]["fp16_grid"] = q.format.fp16;
      }
    }
  }
  if (method_info.is_object())
    for (const auto& [k, v] : method_info.items())
      if (!kReserved.count(k)) info[k] = ordered_json::parse(v.dump());
  info["modules"] = names;
  if (!overrides.empty()) info["overrides"] = overrides;
  config.erase("quantization_config");
  config.erase("tquant");
  config[fake ? "tquant" : "quantization_config"] = info;

  const fs::path dir = tmp.path();
  write_safetensors(dir / "model.safetensors", out, meta);
  {
    std::ofstream f(dir / "config.json", std::ios::binary);
    f << config.dump(2) << "\n";
    f.close();
    if (!f) fail("{}: write failed (disk full?)", (dir / "config.json").string());
  }
  // Every other file of the input folder: tokenizer, generation config, README, ...
  std::set<fs::path> checkpoint_files;
  for (const auto& file : ckpt.files()) checkpoint_files.insert(fs::absolute(file->path()).lexically_normal());
  for (const fs::directory_entry& e : fs::directory_iterator(input)) {
    const std::string name = e.path().filename().string();
    if (name == "config.json" || is_pickle_or_weights(name) ||
        checkpoint_files.count(fs::absolute(e.path()).lexically_normal()) || !e.is_regular_file())
      continue;  // folders are not copied; stale FP weights in other formats neither
    std::error_code ec;
    fs::copy_file(e.path(), dir / name, fs::copy_options::none, ec);
    if (ec) fail("{}: cannot copy {}: {}", out_dir.string(), e.path().string(), ec.message());
    fs::permissions(dir / name, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add, ec);
  }
  tmp.move_to(out_dir);
}

}  // namespace tquant::wq
