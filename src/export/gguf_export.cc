#include "export/gguf_export.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>

#include "core/error.h"
#include "export/gguf_llama.h"
#include "export/gguf_reader.h"
#include "export/gguf_vocab.h"
#include "export/gguf_writer.h"
#include "io/half.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "wquant/quantized_checkpoint.h"

namespace tquant::gguf {

namespace fs = std::filesystem;

namespace {

struct Grid {
  int bits;
  bool symmetric;
};

Grid grid_of(TensorType t) {
  switch (t) {
    case TensorType::Q4_0: return {4, true};
    case TensorType::Q4_1: return {4, false};
    case TensorType::Q8_0: return {8, true};
    default: fail("internal: {} is not a block type", type_name(t));
  }
}

std::string grid_text(int bits, bool symmetric) {
  return fmt::format("{}-bit {}", bits, symmetric ? "symmetric" : "asymmetric");
}

// Rows of t encoded as `type`.
std::vector<uint8_t> encode_rows(const Tensor& t, TensorType type, const std::string& where) {
  const int64_t cols = t.cols(), rows = t.rows();
  const int64_t rb = row_bytes(type, cols, where);
  std::vector<uint8_t> out(static_cast<size_t>(rows * rb));
  for (int64_t r = 0; r < rows; ++r) quantize_row(type, t.data() + r * cols, cols, out.data() + r * rb);
  return out;
}

std::string prefix_of(const std::string& weight_name) {
  const std::string suffix = ".weight";
  if (weight_name.size() > suffix.size() && weight_name.ends_with(suffix))
    return weight_name.substr(0, weight_name.size() - suffix.size());
  return weight_name;
}

class Exporter {
 public:
  Exporter(const fs::path& dir, TensorType type) : dir_(dir), type_(type) {}

  ExportReport run(const fs::path& out) {
    if (is_gguf_path(dir_)) fail("{}: is already a GGUF file; export reads a Hugging Face model folder", dir_.string());
    model_ = Model::load(dir_);
    const ModelConfig& c = model_.config();
    if (c.arch != Arch::Llama)
      fail("{}: architecture {} has no GGUF mapping in tquant yet (supported: LlamaForCausalLM)", dir_.string(),
           c.architecture);
    Metadata hparams;
    append_llama_hparams(c, hparams);

    quant_ = wq::read_quantization_config(dir_ / "config.json");
    report_.quantized_source = quant_.has_value();
    if (quant_) {
      checkpoint_.emplace(Checkpoint::open(dir_));
      if (type_ == TensorType::F16)
        fail("{}: a quantized checkpoint exports exactly as --type f32 (its dequantized weights) or as the block type "
             "of its grid (q4_0, q4_1, q8_0); f16 would round its weights",
             dir_.string());
    }
    if (!quant_ && type_ != TensorType::F32) note_fake_quantized();

    add_fp("token_embd.weight", model_.token_embedding, true);
    for (int i = 0; i < c.layers; ++i) {
      Block& b = model_.blocks[i];
      for (const NormSlot& n : kLlamaNorms) add_fp(block_tensor(i, n.name, "weight"), (b.*n.member).gamma, false);
      for (const LinearSlot& s : kLlamaLinears) {
        const Linear& l = b.*s.member;
        std::optional<std::vector<int64_t>> perm;
        if (s.rope != RopeRows::None)
          perm = rope_permutation(s.rope == RopeRows::QueryHeads ? c.heads : c.kv_heads, c.head_dim);
        add_linear(block_tensor(i, s.name, "weight"), l, perm);
        if (!l.bias.empty()) {
          const Tensor bias = perm ? permute_rows(l.bias, *perm, false) : l.bias;
          add_fp(block_tensor(i, s.name, "bias"), bias, false);
        }
      }
    }
    add_fp("output_norm.weight", model_.final_norm.gamma, false);
    if (model_.lm_head.weight.data() != model_.token_embedding.data())
      add_linear("output.weight", model_.lm_head, std::nullopt);  // tied heads: llama.cpp reuses token_embd

    Metadata md;
    md.emplace_back("general.architecture", Value::string("llama"));
    md.emplace_back("general.name", Value::string(fs::absolute(dir_).lexically_normal().filename().string()));
    md.emplace_back("general.file_type", Value::u32(file_type_of(type_)));
    bool any_blocks = false;
    for (const TensorToWrite& t : tensors_) any_blocks |= is_block_type(t.type);
    if (any_blocks) md.emplace_back("general.quantization_version", Value::u32(kQuantizationVersion));
    md.emplace_back("general.alignment", Value::u32(kDefaultAlignment));
    for (auto& kv : hparams) md.push_back(std::move(kv));
    append_llama_vocab(dir_, c.vocab_size, md);
    if (quant_) {
      const nlohmann::json config = nlohmann::json::parse(read_config_text());
      md.emplace_back("tquant.quantization_config", Value::string(config["quantization_config"].dump()));
    }

    write_gguf(out, md, tensors_);
    for (const TensorToWrite& t : tensors_) ++report_.tensors_by_type[type_name(t.type)];
    report_.file_bytes = fs::file_size(out);
    return report_;
  }

 private:
  std::string read_config_text() const {
    std::ifstream f(dir_ / "config.json", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }

  void note_fake_quantized() {
    try {
      const nlohmann::json config = nlohmann::json::parse(read_config_text());
      if (config.contains("tquant") && config["tquant"].is_object())
        report_.notes.push_back(
            "this folder holds tquant's dequantized (--fake) weights; they are quantized again here, round to "
            "nearest. Export the packed checkpoint instead for the exact GPTQ/aespa weights.");
    } catch (const nlohmann::json::exception&) {
    }
  }

  std::string where(const std::string& tensor) const { return fmt::format("{}: tensor {}", dir_.string(), tensor); }

  void push(const std::string& name, TensorType type, Shape shape, std::vector<uint8_t> data) {
    tensors_.push_back({name, type, std::move(shape), std::move(data)});
  }

  // 1-D tensors are always float32; a quantized checkpoint's FP matrices too (they stay exact).
  void add_fp(const std::string& name, const Tensor& t, bool matrix) {
    const TensorType type = !matrix || quant_ ? TensorType::F32 : type_;
    if (type != TensorType::F32) ++report_.rounded;
    push(name, type, t.shape(), encode_rows(t, type, where(name)));
  }

  void add_linear(const std::string& name, const Linear& l, const std::optional<std::vector<int64_t>>& perm) {
    const std::string prefix = prefix_of(l.source.weight);
    const bool packed = quant_ && quant_->modules.count(prefix);
    std::vector<uint8_t> bytes;
    TensorType type;
    if (packed && is_block_type(type_)) {
      const wq::QuantizedWeight q =
          wq::read_quantized_linear(*checkpoint_, prefix, quant_->modules.at(prefix), l.out(), l.in());
      const std::string what = fmt::format("{}: {} ({})", dir_.string(), prefix, name);
      bytes = encode_exact(q, type_, what);
      check_decodes_to(bytes, l.weight, what);
      type = type_;
      ++report_.exact;
    } else {
      type = quant_ ? TensorType::F32 : type_;
      if (type != TensorType::F32) ++report_.rounded;
      bytes = encode_rows(l.weight, type, where(name));
    }
    if (perm) bytes = permute_rows(bytes, *perm, false);
    push(name, type, l.weight.shape(), std::move(bytes));
  }

  // The exactness guarantee, checked rather than assumed: the blocks decode (as ggml decodes
  // them) to the very float32 weights that tquant's loader produced for the checkpoint.
  void check_decodes_to(const std::vector<uint8_t>& bytes, const Tensor& w, const std::string& what) const {
    const int64_t rows = w.dim(0), cols = w.dim(1), rb = row_bytes(type_, cols, what);
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(type_, bytes.data() + r * rb, cols, row.data());
      if (std::memcmp(row.data(), w.data() + r * cols, sizeof(float) * cols) != 0)
        fail("internal error: {}: the {} blocks of row {} do not decode to the checkpoint's weights", what,
             type_name(type_), r);
    }
  }

  fs::path dir_;
  TensorType type_;
  Model model_;
  std::optional<wq::QuantizationConfig> quant_;
  std::optional<Checkpoint> checkpoint_;
  std::vector<TensorToWrite> tensors_;
  ExportReport report_;
};

}  // namespace

std::vector<uint8_t> encode_exact(const wq::QuantizedWeight& q, TensorType type, const std::string& name) {
  const wq::WeightFormat& f = q.grid.format;
  const Grid want = grid_of(type);
  const char* tn = type_name(type);
  if (!q.zeta.empty())
    fail("{}: carries a Z-Fold factor per input column (.zeta); a GGUF {} block has one scale per 32 weights of a "
         "row and cannot hold it (pre-norm layers fold ζ into the norm instead)",
         name, tn);
  if (f.bits != want.bits || f.symmetric != want.symmetric)
    fail("{}: {} weights; {} holds {} codes (quantize with --format {}, or export with --type f32)", name,
         grid_text(f.bits, f.symmetric), tn, grid_text(want.bits, want.symmetric), tn);
  const int64_t R = q.grid.rows, C = q.grid.cols;
  if (C % kBlock != 0)
    fail("{}: rows of {} weights are not a whole number of the {}-weight blocks of {}", name, C, kBlock, tn);
  if (f.group != 0 && f.group % kBlock != 0)
    fail("{}: groups of {} weights; a {} block of {} weights has one scale, so the group size must be a multiple of "
         "{} (or one scale per row)",
         name, f.group, tn, kBlock, kBlock);
  const int64_t rb = row_bytes(type, C, name), bb = block_bytes(type);
  std::vector<uint8_t> out(static_cast<size_t>(R * rb));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t b = 0; b < C / kBlock; ++b) {
      const int64_t g = q.grid.index(r, b * kBlock);
      const float s = q.grid.scale[g], z = q.grid.zero[g];
      const uint16_t d = f32_to_f16(s);
      if (f16_to_f32(d) != s)
        fail("{}: the scale {:.9g} of row {}, group {} is not an fp16 value, so a {} block cannot store it exactly "
             "(quantize with --format {}, whose scales are fp16)",
             name, s, r, g % f.groups_per_row(C), tn, tn);
      const uint8_t* codes = q.codes.data() + r * C + b * kBlock;
      uint8_t* blk = out.data() + r * rb + b * bb;
      if (type == TensorType::Q4_0) {
        encode_q4_0(d, codes, blk);  // zero point 8: x = d·(q − 8) is tquant's s·(q − z) as it stands
      } else if (type == TensorType::Q4_1) {
        const float m = z == 0.f ? 0.f : -(s * z);  // exact in float32: an 11-bit s times a 4-bit z
        const uint16_t mh = f32_to_f16(m);
        if (f16_to_f32(mh) != m)
          fail("{}: the offset −scale·zero = {:.9g} of row {}, group {} is not an fp16 value, so a q4_1 block "
               "cannot store it exactly (quantize with --format q4_1)",
               name, m, r, g % f.groups_per_row(C));
        encode_q4_1(d, mh, codes, blk);
      } else {
        int8_t q8[kBlock];
        for (int j = 0; j < kBlock; ++j) q8[j] = static_cast<int8_t>(static_cast<int>(codes[j]) - 128);
        encode_q8_0(d, q8, blk);
      }
    }
  return out;
}

ExportReport export_gguf(const fs::path& model_dir, TensorType type, const fs::path& out) {
  return Exporter(model_dir, type).run(out);
}

}  // namespace tquant::gguf
