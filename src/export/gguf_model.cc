#include "export/gguf_model.h"

#include <set>

#include "core/error.h"
#include "export/gguf_llama.h"
#include "export/gguf_reader.h"

namespace tquant {

using namespace gguf;

Model load_gguf_model(const std::filesystem::path& path) {
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
  auto norm = [&](const std::string& name) {
    Norm n;
    n.gamma = take(name, {D});
    n.source.weight = name;
    return n;
  };

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
      l.weight = take(l.source.weight, {out, in});
      const bool has_bias = s.attention ? c.attention_bias : c.mlp_bias;
      if (has_bias) {
        l.source.bias = block_tensor(i, s.name, "bias");
        l.bias = take(l.source.bias, {out});
      }
      if (s.rope != RopeRows::None) {
        const auto perm = rope_permutation(s.rope == RopeRows::QueryHeads ? c.heads : c.kv_heads, c.head_dim);
        l.weight = permute_rows(l.weight, perm, true);
        if (has_bias) l.bias = permute_rows(l.bias, perm, true);
      }
    }
  }
  m.final_norm = norm("output_norm.weight");
  if (c.tie_embeddings) {
    m.lm_head.weight = m.token_embedding;
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
