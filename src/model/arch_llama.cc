// LlamaForCausalLM: "model.layers.N.self_attn.q_proj" etc.; RMSNorm has no bias.
#include <fmt/format.h>

#include "core/error.h"
#include "model/weight_reader.h"

namespace tquant {

void load_llama(const WeightReader& r, Model& m) {
  const ModelConfig& c = m.config();
  const int64_t D = c.hidden, V = c.vocab_size, F = c.intermediate;
  const int64_t qd = int64_t{c.heads} * c.head_dim, kvd = int64_t{c.kv_heads} * c.head_dim;

  // The default model stores only lm_head.weight and declares the embedding an alias of it in
  // the safetensors metadata; HF then ties the two.
  const bool embed_stored = r.has("model.embed_tokens.weight");
  const bool head_stored = r.has("lm_head.weight") || r.is_quantized("lm_head");
  const auto& meta = r.checkpoint().metadata();
  const auto alias = meta.find("model.embed_tokens.weight");
  if (embed_stored) {
    m.token_embedding = r.take("model.embed_tokens.weight", {V, D});
  } else if (head_stored && (c.tie_embeddings || (alias != meta.end() && alias->second == "lm_head.weight"))) {
    m.token_embedding = r.take("lm_head.weight", {V, D});
  } else {
    fail("{}: the checkpoint has no model.embed_tokens.weight", r.dir().string());
  }
  m.token_embedding_source = "model.embed_tokens.weight";
  if (c.tie_embeddings || !head_stored) {
    if (!c.tie_embeddings)
      fail("{}: lm_head.weight is missing and config.json has tie_word_embeddings false", r.dir().string());
    m.lm_head.weight = m.token_embedding;
    m.lm_head.source.weight = "lm_head.weight";
  } else {
    m.lm_head = r.linear("lm_head", V, D, false);
  }

  m.blocks.resize(c.layers);
  for (int i = 0; i < c.layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    Block& b = m.blocks[i];
    b.attn_norm = r.norm(p + "input_layernorm.weight", "", D);
    b.ffn_norm = r.norm(p + "post_attention_layernorm.weight", "", D);
    b.q = r.linear(p + "self_attn.q_proj", qd, D, c.attention_bias);
    b.k = r.linear(p + "self_attn.k_proj", kvd, D, c.attention_bias);
    b.v = r.linear(p + "self_attn.v_proj", kvd, D, c.attention_bias);
    b.o = r.linear(p + "self_attn.o_proj", D, qd, c.attention_bias);
    b.gate = r.linear(p + "mlp.gate_proj", F, D, c.mlp_bias);
    b.up = r.linear(p + "mlp.up_proj", F, D, c.mlp_bias);
    b.down = r.linear(p + "mlp.down_proj", D, F, c.mlp_bias);
  }
  m.final_norm = r.norm("model.norm.weight", "", D);
}

}  // namespace tquant
