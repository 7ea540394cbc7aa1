#include "export/gguf_model.h"

#include <set>

#include "core/error.h"
#include "export/gguf_llama.h"
#include "export/gguf_reader.h"
#include "kernels/qblock_formats.h"

namespace tquant {

using namespace gguf;

Model load_gguf_model(const std::filesystem::path& path, bool keep_packed) {
  const GgufFile f(path);
  const std::string file = path.string();
  const std::string arch = f.at("general.architecture").as_string(f.where("general.architecture"));
  if (arch != "llama")
    fail("{}: general.architecture is \"{}\"; tquant reads GGUF llama models only", file, arch);
  const TensorEntry& emb = f.tensor("token_embd.weight");
  if (emb.shape.size() != 2) fail("{}: tensor \"token_embd.weight\" has shape {}, expected [vocab, hidden]", file, shape_str(emb.shape));

  Model m;
  m.config_ = llama_config_from_gguf(f, emb.shape[0]);
  m.dir_ = path;
  const ModelConfig& c = m.config_;
  const int64_t D = c.hidden, V = c.vocab_size;

  std::set<std::string> used;
  auto take = [&](const std::string& name, const Shape& shape) {
    const TensorEntry& t = f.tensor(name);
    if (t.shape != shape)
      fail("{}: tensor \"{}\" has shape {}, but the llama.* keys imply {}", file, name, shape_str(t.shape), shape_str(shape));
    used.insert(name);
    return f.load_f32(name);
  };
  // A q4_0 / q4_1 / q8_0 linear kept in its blocks, rows put back in HF order (perm as for
  // permute_rows with inverse; empty = none).
  auto take_packed = [&](const std::string& name, const Shape& shape, const std::vector<int64_t>& perm) {
    const TensorEntry& t = f.tensor(name);
    if (t.shape != shape)
      fail("{}: tensor \"{}\" has shape {}, but the llama.* keys imply {}", file, name, shape_str(t.shape), shape_str(shape));
    used.insert(name);
    const auto raw = f.data(t);
    std::vector<uint8_t> bytes(raw.begin(), raw.end());
    if (!perm.empty()) bytes = permute_rows(bytes, perm, true);
    const QFormat q = t.type == TensorType::Q4_0 ? QFormat::Q4_0 : t.type == TensorType::Q4_1 ? QFormat::Q4_1 : QFormat::Q8_0;
    return std::make_shared<const PackedMatrix>(
        PackedMatrix::from_ggml(q, shape[0], shape[1], bytes, fmt::format("{}: tensor \"{}\"", file, name)));
  };
  auto norm = [&](const std::string& name) {
    Norm n;
    n.gamma = take(name, {D});
    n.source.weight = name;
    return n;
  };

  if (keep_packed && is_block_type(emb.type))
    m.token_embedding_packed = take_packed("token_embd.weight", {V, D}, {});
  else
    m.token_embedding = take("token_embd.weight", {V, D});
  m.token_embedding_source = "token_embd.weight";
  m.blocks.resize(c.layers);
  for (int i = 0; i < c.layers; ++i) {
    Block& b = m.blocks[i];
    b.attn_norm = norm(block_tensor(i, "attn_norm", "weight"));
    b.ffn_norm = norm(block_tensor(i, "ffn_norm", "weight"));
    for (const LinearSlot& s : kLlamaLinears) {
      const int64_t out = width_of(s.out, c), in = width_of(s.in, c);
      Linear& l = b.*s.member;
      l.source.weight = block_tensor(i, s.name, "weight");
      const auto perm = s.rope != RopeRows::None
                            ? rope_permutation(s.rope == RopeRows::QueryHeads ? c.heads : c.kv_heads, c.head_dim)
                            : std::vector<int64_t>{};
      if (keep_packed && is_block_type(f.tensor(l.source.weight).type)) {
        l.packed = take_packed(l.source.weight, {out, in}, perm);
      } else {
        l.weight = take(l.source.weight, {out, in});
        if (!perm.empty()) l.weight = permute_rows(l.weight, perm, true);
      }
      const bool has_bias = s.attention ? c.attention_bias : c.mlp_bias;
      if (has_bias) {
        l.source.bias = block_tensor(i, s.name, "bias");
        l.bias = take(l.source.bias, {out});
      }
      if (has_bias && !perm.empty()) l.bias = permute_rows(l.bias, perm, true);
    }
  }
  m.final_norm = norm("output_norm.weight");
  if (c.tie_embeddings) {
    m.lm_head.weight = m.token_embedding;
    m.lm_head.packed = m.token_embedding_packed;
  } else if (keep_packed && is_block_type(f.tensor("output.weight").type)) {
    m.lm_head.packed = take_packed("output.weight", {V, D}, {});
  } else {
    m.lm_head.weight = take("output.weight", {V, D});
  }
  m.lm_head.source.weight = "output.weight";
  for (const TensorEntry& t : f.tensors())
    if (!used.count(t.name))
      fail("{}: tensor \"{}\" is not part of the llama layout tquant reads (e.g. RoPE frequency factors or a "
           "layer beyond llama.block_count)", file, t.name);
  m.name_everything();
  return m;
}

}  // namespace tquant
