// OPTForCausalLM: "model.decoder.layers.N.self_attn.q_proj" etc. ("model." is optional);
// table has two extra rows (HF offsets every position by 2).
#include <fmt/format.h>

#include "core/error.h"
#include "model/weight_reader.h"

namespace tquant {

void load_opt(const WeightReader& r, Model& m) {
  const ModelConfig& c = m.config();
  const int64_t D = c.hidden, V = c.vocab_size, F = c.intermediate;
  m.token_embedding = r.take("decoder.embed_tokens.weight", {V, D});
  m.token_embedding_source = r.full_name("decoder.embed_tokens.weight");
  m.position_embedding = r.take("decoder.embed_positions.weight", {c.max_positions + c.position_offset, D});
  m.position_embedding_source = r.full_name("decoder.embed_positions.weight");
  // Tied: HF ignores a stored lm_head.weight. Untied: it must be there (HF would otherwise
  // leave it randomly initialised).
  if (c.tie_embeddings) {
    m.lm_head.weight = m.token_embedding;
    m.lm_head.source.weight = "lm_head.weight";
  } else {
    m.lm_head = r.linear("lm_head", V, D, false);
  }

  m.blocks.resize(c.layers);
  for (int i = 0; i < c.layers; ++i) {
    const std::string p = fmt::format("decoder.layers.{}.", i);
    Block& b = m.blocks[i];
    b.attn_norm = r.norm(p + "self_attn_layer_norm.weight", p + "self_attn_layer_norm.bias", D);
    b.ffn_norm = r.norm(p + "final_layer_norm.weight", p + "final_layer_norm.bias", D);
    b.q = r.linear(p + "self_attn.q_proj", D, D, c.attention_bias);
    b.k = r.linear(p + "self_attn.k_proj", D, D, c.attention_bias);
    b.v = r.linear(p + "self_attn.v_proj", D, D, c.attention_bias);
    b.o = r.linear(p + "self_attn.out_proj", D, D, c.attention_bias);
    b.up = r.linear(p + "fc1", F, D, c.mlp_bias);
    b.down = r.linear(p + "fc2", D, F, c.mlp_bias);
  }
  m.final_norm = r.norm("decoder.final_layer_norm.weight", "decoder.final_layer_norm.bias", D);
}

}  // namespace tquant
