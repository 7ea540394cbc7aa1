// BertModel / BertForSequenceClassification / BertForMaskedLM. Old TF-converted checkpoints
// name LayerNorm parameters gamma/beta instead of weight/bias; HF renames them, so do we.
#include <fmt/format.h>

#include "core/error.h"
#include "model/weight_reader.h"

namespace tquant {
namespace {

Norm layer_norm(const WeightReader& r, const std::string& base, int64_t d) {
  if (r.has(base + ".gamma")) return r.norm(base + ".gamma", base + ".beta", d);
  return r.norm(base + ".weight", base + ".bias", d);
}

}  // namespace

void load_bert(const WeightReader& r, Model& m) {
  const ModelConfig& c = m.config();
  const int64_t D = c.hidden, V = c.vocab_size, F = c.intermediate;
  m.token_embedding = r.take("embeddings.word_embeddings.weight", {V, D});
  m.token_embedding_source = r.full_name("embeddings.word_embeddings.weight");
  m.position_embedding = r.take("embeddings.position_embeddings.weight", {c.max_positions, D});
  m.position_embedding_source = r.full_name("embeddings.position_embeddings.weight");
  if (c.type_vocab_size > 0) {
    m.type_embedding = r.take("embeddings.token_type_embeddings.weight", {c.type_vocab_size, D});
    m.type_embedding_source = r.full_name("embeddings.token_type_embeddings.weight");
  }
  m.embedding_norm = layer_norm(r, "embeddings.LayerNorm", D);

  m.blocks.resize(c.layers);
  for (int i = 0; i < c.layers; ++i) {
    const std::string p = fmt::format("encoder.layer.{}.", i);
    Block& b = m.blocks[i];
    b.q = r.linear(p + "attention.self.query", D, D, true);
    b.k = r.linear(p + "attention.self.key", D, D, true);
    b.v = r.linear(p + "attention.self.value", D, D, true);
    b.o = r.linear(p + "attention.output.dense", D, D, true);
    b.attn_norm = layer_norm(r, p + "attention.output.LayerNorm", D);
    b.up = r.linear(p + "intermediate.dense", F, D, true);
    b.down = r.linear(p + "output.dense", D, F, true);
    b.ffn_norm = layer_norm(r, p + "output.LayerNorm", D);
  }

  if (c.head == Head::SequenceClassification) {
    m.pooler = r.linear("pooler.dense", D, D, true);
    m.classifier = r.linear("classifier", c.num_labels, D, true);
  } else if (c.head == Head::MaskedLM) {
    m.mlm_transform = r.linear("cls.predictions.transform.dense", D, D, true);
    m.mlm_norm = layer_norm(r, "cls.predictions.transform.LayerNorm", D);
    if (!c.tie_embeddings && (r.has("cls.predictions.decoder.weight") || r.is_quantized("cls.predictions.decoder"))) {
      m.mlm_decoder = r.linear("cls.predictions.decoder", V, D, false);
    } else {
      m.mlm_decoder.weight = m.token_embedding;
      m.mlm_decoder.source.weight = "cls.predictions.decoder.weight";
    }
    const std::string bias = r.has("cls.predictions.bias") ? "cls.predictions.bias" : "cls.predictions.decoder.bias";
    m.mlm_decoder.bias = r.take(bias, {V});
    m.mlm_decoder.source.bias = r.full_name(bias);
  }
}

}  // namespace tquant
