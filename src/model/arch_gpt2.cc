// GPT2LMHeadModel: Conv1D weights are stored [in, out] (transposed against nn.Linear) and the
// attention's c_attn packs Q, K and V side by side along the output dimension.
#include <fmt/format.h>

#include <cstring>

#include "core/error.h"
#include "model/weight_reader.h"

namespace tquant {
namespace {

// A quantized checkpoint stores Conv1D layers quantized in [out, in] orientation (see
// wquant/quantized_checkpoint.h), so they need no transpose.
Linear conv1d(const WeightReader& r, const std::string& name, int64_t in, int64_t out) {
  Linear l;
  l.weight = r.is_quantized(name) ? r.take_dequantized(name, out, in) : r.take_transposed(name + ".weight", {in, out});
  l.bias = r.take(name + ".bias", {out});
  l.source.weight = r.weight_name(name);
  l.source.bias = r.full_name(name + ".bias");
  l.source.transposed = true;
  return l;
}

// Rows [part*D, (part+1)*D) of the packed [3D, D] QKV projection.
Linear slice_rows(const Linear& packed, int part, int64_t d) {
  Linear l;
  const int64_t in = packed.in();
  l.weight = Tensor({d, in});
  std::memcpy(l.weight.data(), packed.weight.data() + part * d * in, sizeof(float) * d * in);
  l.bias = Tensor({d});
  std::memcpy(l.bias.data(), packed.bias.data() + part * d, sizeof(float) * d);
  l.source = packed.source;
  l.source.row_offset = part * d;
  l.source.fused_rows = packed.out();
  return l;
}

}  // namespace

void load_gpt2(const WeightReader& r, Model& m) {
  const ModelConfig& c = m.config();
  const int64_t D = c.hidden, V = c.vocab_size, F = c.intermediate;
  m.token_embedding = r.take("wte.weight", {V, D});
  m.token_embedding_source = r.full_name("wte.weight");
  m.position_embedding = r.take("wpe.weight", {c.max_positions, D});
  m.position_embedding_source = r.full_name("wpe.weight");
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
    const std::string p = fmt::format("h.{}.", i);
    Block& b = m.blocks[i];
    b.attn_norm = r.norm(p + "ln_1.weight", p + "ln_1.bias", D);
    b.ffn_norm = r.norm(p + "ln_2.weight", p + "ln_2.bias", D);
    const Linear qkv = conv1d(r, p + "attn.c_attn", D, 3 * D);
    b.q = slice_rows(qkv, 0, D);
    b.k = slice_rows(qkv, 1, D);
    b.v = slice_rows(qkv, 2, D);
    b.o = conv1d(r, p + "attn.c_proj", D, D);
    b.up = conv1d(r, p + "mlp.c_fc", D, F);
    b.down = conv1d(r, p + "mlp.c_proj", F, D);
  }
  m.final_norm = r.norm("ln_f.weight", "ln_f.bias", D);
}

}  // namespace tquant
