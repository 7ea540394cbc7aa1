#include <fmt/format.h>

#include "core/error.h"
#include "export/gguf_model.h"
#include "export/gguf_reader.h"
#include "io/safetensors.h"
#include "kernels/qblock_formats.h"
#include "kernels/qgemv_q8act.h"
#include "model/model.h"
#include "model/point_names.h"
#include "model/weight_reader.h"
#include "wquant/quantized_checkpoint.h"

namespace tquant {

Batch Batch::single(std::vector<int32_t> ids, std::vector<int32_t> type_ids) {
  Batch b;
  b.batch = 1;
  b.seq = static_cast<int>(ids.size());
  b.ids = std::move(ids);
  b.type_ids = std::move(type_ids);
  b.lengths = {b.seq};
  return b;
}

Model load_model_weights(const std::filesystem::path& dir, bool keep_packed) {
  if (!std::filesystem::is_directory(dir)) fail("{}: not a model folder", dir.string());
  Model m;
  m.dir_ = dir;
  // Weights first: a pickle-only folder should hear why it is refused before any config detail.
  const Checkpoint checkpoint = Checkpoint::open(dir);
  m.config_ = parse_config(dir / "config.json");
  WeightReader reader(checkpoint, dir);
  // A tquant quantized checkpoint: its packed linears are dequantized to F32 as they are read.
  const std::optional<wq::QuantizationConfig> quantization = wq::read_quantization_config(dir / "config.json");
  if (quantization) reader.set_quantization(&*quantization);
  reader.set_keep_packed(keep_packed);
  switch (m.config_.arch) {
    case Arch::Llama:
      load_llama(reader, m);
      break;
    case Arch::Bert:
      reader.set_prefixes({"bert.", ""});
      load_bert(reader, m);
      break;
    case Arch::OPT:
      reader.set_prefixes({"model.", ""});
      load_opt(reader, m);
      break;
    case Arch::GPT2:
      reader.set_prefixes({"transformer.", ""});
      load_gpt2(reader, m);
      break;
  }
  reader.check_quantized_modules_used();
  m.name_everything();
  return m;
}

Model Model::load(const std::filesystem::path& dir, bool keep_packed) {
  if (gguf::is_gguf_path(dir)) return load_gguf_model(dir, keep_packed);
  return load_model_weights(dir, keep_packed);
}

int64_t Linear::in() const { return packed ? packed->cols : weight.dim(1); }
int64_t Linear::out() const { return packed ? packed->rows : weight.dim(0); }

bool Model::has_packed_weights() const {
  if (token_embedding_packed) return true;
  for (const Linear* l : const_cast<Model*>(this)->linears())
    if (l->packed) return true;
  return false;
}

int Model::enable_q8_activations() {
  int n = 0;
  for (Linear* l : linears())
    if (l->packed && packed_q8act_supported(*l->packed)) {
      l->q8_activations = true;
      ++n;
    }
  return n;
}

void Model::require_fp_weights(const char* what) const {
  if (token_embedding_packed)
    fail("{}: {} needs float weights, but the token embedding is held packed ({}); load the model without keeping "
         "it packed", dir_.string(), what, qformat_name(token_embedding_packed->format));
  for (const Linear* l : const_cast<Model*>(this)->linears())
    if (l->packed)
      fail("{}: {} needs float weights, but layer {} is held packed ({}); load the model without keeping it packed",
           dir_.string(), what, l->name, qformat_name(l->packed->format));
}

void Model::name_everything() {
  for (size_t i = 0; i < blocks.size(); ++i) {
    Block& b = blocks[i];
    const std::string p = fmt::format("layers.{}.", i);
    b.attn_norm.name = p + "attn.norm";
    b.ffn_norm.name = p + "ffn.norm";
    b.q.name = p + "attn.q_proj";
    b.k.name = p + "attn.k_proj";
    b.v.name = p + "attn.v_proj";
    b.o.name = p + "attn.o_proj";
    b.up.name = p + "ffn.up_proj";
    b.gate.name = p + "ffn.gate_proj";
    b.down.name = p + "ffn.down_proj";
  }
  embedding_norm.name = "embed.norm";
  final_norm.name = "final_norm";
  lm_head.name = "lm_head";
  pooler.name = "pooler.dense";
  classifier.name = "classifier";
  mlm_transform.name = "mlm.transform";
  mlm_norm.name = "mlm.norm";
  mlm_decoder.name = "mlm.decoder";
}

std::vector<Linear*> Model::linears() {
  std::vector<Linear*> out;
  for (Block& b : blocks)
    for (Linear* l : {&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down})
      if (!l->weight.empty() || l->packed) out.push_back(l);
  for (Linear* l : {&lm_head, &pooler, &classifier, &mlm_transform, &mlm_decoder})
    if (!l->weight.empty() || l->packed) out.push_back(l);
  return out;
}

std::vector<std::pair<std::string, Tensor*>> Model::embedding_tables() {
  const auto& names = documented_embedding_names();
  std::vector<std::pair<std::string, Tensor*>> out;
  Tensor* tables[] = {&token_embedding, &position_embedding, &type_embedding};
  for (size_t i = 0; i < names.size(); ++i)
    if (!tables[i]->empty()) out.emplace_back(names[i], tables[i]);
  return out;
}

std::vector<Norm*> Model::norms() {
  std::vector<Norm*> out;
  if (!embedding_norm.gamma.empty()) out.push_back(&embedding_norm);
  for (Block& b : blocks) {
    out.push_back(&b.attn_norm);
    out.push_back(&b.ffn_norm);
  }
  for (Norm* n : {&final_norm, &mlm_norm})
    if (!n->gamma.empty()) out.push_back(n);
  return out;
}

}  // namespace tquant
