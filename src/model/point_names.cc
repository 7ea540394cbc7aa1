#include "model/point_names.h"

#include <fmt/format.h>

namespace tquant {

std::vector<std::string> documented_linear_names(int layers) {
  std::vector<std::string> out;
  for (int i = 0; i < layers; ++i)
    for (const char* l : {"attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj", "ffn.gate_proj", "ffn.up_proj",
                          "ffn.down_proj"})
      out.push_back(fmt::format("layers.{}.{}", i, l));
  for (const char* l : {"lm_head", "pooler.dense", "classifier", "mlm.transform", "mlm.decoder"}) out.push_back(l);
  return out;
}

const std::vector<std::string>& documented_embedding_names() {
  static const std::vector<std::string> names = {"embed.tokens", "embed.positions", "embed.types"};
  return names;
}

std::vector<std::string> documented_recipe_names(int layers) {
  std::vector<std::string> out = documented_point_names(layers);
  for (const auto& names : {documented_linear_names(layers), documented_embedding_names()})
    out.insert(out.end(), names.begin(), names.end());
  return out;
}

std::vector<std::string> documented_point_names(int layers) {
  std::vector<std::string> out = {"embed.out", "embed.norm.out"};
  for (int i = 0; i < layers; ++i)
    for (const char* p : {"attn.norm.out", "attn.query", "attn.key", "attn.scores", "attn.probs", "attn.context",
                          "attn.residual_sum", "ffn.norm.out", "ffn.act.out", "ffn.residual_sum"})
      out.push_back(fmt::format("layers.{}.{}", i, p));
  for (const auto& l : documented_linear_names(layers)) {
    out.push_back(l + ".in");
    out.push_back(l + ".out");
  }
  for (const char* p : {"final_norm.out", "mlm.act.out", "mlm.norm.out", "pooler.out", "logits"}) out.push_back(p);
  return out;
}

}  // namespace tquant
