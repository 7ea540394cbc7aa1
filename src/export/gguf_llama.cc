#include "export/gguf_llama.h"

#include <cstring>

#include "core/error.h"
#include "export/gguf_reader.h"

namespace tquant::gguf {

const LinearSlot kLlamaLinears[7] = {
    {"attn_q", &Block::q, RopeRows::QueryHeads, Width::Query, Width::Hidden, true},
    {"attn_k", &Block::k, RopeRows::KeyHeads, Width::KeyValue, Width::Hidden, true},
    {"attn_v", &Block::v, RopeRows::None, Width::KeyValue, Width::Hidden, true},
    {"attn_output", &Block::o, RopeRows::None, Width::Hidden, Width::Query, true},
    {"ffn_gate", &Block::gate, RopeRows::None, Width::FFN, Width::Hidden, false},
    {"ffn_up", &Block::up, RopeRows::None, Width::FFN, Width::Hidden, false},
    {"ffn_down", &Block::down, RopeRows::None, Width::Hidden, Width::FFN, false},
};

int64_t width_of(Width w, const ModelConfig& c) {
  switch (w) {
    case Width::Hidden: return c.hidden;
    case Width::Query: return int64_t{c.heads} * c.head_dim;
    case Width::KeyValue: return int64_t{c.kv_heads} * c.head_dim;
    case Width::FFN: return c.intermediate;
  }
  return 0;
}
const NormSlot kLlamaNorms[2] = {{"attn_norm", &Block::attn_norm}, {"ffn_norm", &Block::ffn_norm}};

std::string block_tensor(int layer, const char* name, const char* suffix) {
  return fmt::format("blk.{}.{}.{}", layer, name, suffix);
}

std::vector<int64_t> rope_permutation(int64_t heads, int64_t head_dim) {
  if (heads <= 0 || head_dim <= 0 || head_dim % 2 != 0)
    fail("RoPE row permutation: {} heads of dimension {} (the dimension must be even)", heads, head_dim);
  const int64_t half = head_dim / 2;
  std::vector<int64_t> perm(static_cast<size_t>(heads * head_dim));
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j) perm[h * head_dim + 2 * i + j] = h * head_dim + j * half + i;
  return perm;
}

std::vector<uint8_t> permute_rows(const std::vector<uint8_t>& in, const std::vector<int64_t>& perm, bool inverse) {
  const size_t rows = perm.size();
  if (rows == 0 || in.size() % rows != 0) fail("permute_rows: {} bytes do not split into {} rows", in.size(), rows);
  const size_t rb = in.size() / rows;
  std::vector<uint8_t> out(in.size());
  for (size_t r = 0; r < rows; ++r) {
    const size_t src = inverse ? r : static_cast<size_t>(perm[r]);
    const size_t dst = inverse ? static_cast<size_t>(perm[r]) : r;
    std::memcpy(out.data() + dst * rb, in.data() + src * rb, rb);
  }
  return out;
}

Tensor permute_rows(const Tensor& in, const std::vector<int64_t>& perm, bool inverse) {
  const int64_t rows = static_cast<int64_t>(perm.size());
  if (in.ndim() != 2 && in.ndim() != 1) fail("permute_rows: a tensor of shape {}", shape_str(in.shape()));
  if (in.dim(0) != rows) fail("permute_rows: {} rows for a permutation of {}", in.dim(0), rows);
  const int64_t cols = in.ndim() == 2 ? in.dim(1) : 1;
  Tensor out = Tensor::uninitialized(in.shape());
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t src = inverse ? r : perm[r], dst = inverse ? perm[r] : r;
    std::memcpy(out.data() + dst * cols, in.data() + src * cols, sizeof(float) * cols);
  }
  return out;
}

void append_llama_hparams(const ModelConfig& c, Metadata& md) {
  if (c.arch != Arch::Llama || c.head != Head::CausalLM)
    fail("architecture {} has no GGUF mapping in tquant yet (supported: LlamaForCausalLM)", c.architecture);
  if (c.activation != Activation::SiLU)
    fail("{}: llama.cpp's llama uses a SiLU-gated MLP; this model's activation is another", c.architecture);
  if (!c.gated_ffn || c.norm != NormKind::RMSNorm || !c.pre_norm || c.positions != Positions::Rotary)
    fail("{}: only pre-norm RMSNorm blocks with RoPE and a gated MLP map onto GGUF's llama", c.architecture);
  auto u32 = [](int v) { return Value::u32(static_cast<uint32_t>(v)); };
  md.emplace_back("llama.context_length", u32(c.max_positions));
  md.emplace_back("llama.embedding_length", u32(c.hidden));
  md.emplace_back("llama.block_count", u32(c.layers));
  md.emplace_back("llama.feed_forward_length", u32(c.intermediate));
  md.emplace_back("llama.rope.dimension_count", u32(c.head_dim));
  md.emplace_back("llama.attention.head_count", u32(c.heads));
  md.emplace_back("llama.attention.head_count_kv", u32(c.kv_heads));
  md.emplace_back("llama.attention.layer_norm_rms_epsilon", Value::f32(c.norm_eps));
  md.emplace_back("llama.rope.freq_base", Value::f32(c.rope_theta));
  // llama.cpp assumes hidden / heads unless told otherwise.
  if (int64_t{c.head_dim} * c.heads != c.hidden) {
    md.emplace_back("llama.attention.key_length", u32(c.head_dim));
    md.emplace_back("llama.attention.value_length", u32(c.head_dim));
  }
  md.emplace_back("llama.vocab_size", u32(c.vocab_size));
}

ModelConfig llama_config_from_gguf(const GgufFile& f, int64_t vocab) {
  auto uint_key = [&](const char* key) -> int {
    const uint64_t v = f.at(key).as_uint(f.where(key));
    if (v == 0 || v > (uint64_t{1} << 30)) fail("{}: {} is out of range", f.where(key), v);
    return static_cast<int>(v);
  };
  auto uint_or = [&](const char* key, int fallback) { return f.find(key) ? uint_key(key) : fallback; };
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.arch = Arch::Llama;
  c.head = Head::CausalLM;
  c.vocab_size = static_cast<int>(vocab);
  c.hidden = uint_key("llama.embedding_length");
  c.layers = uint_key("llama.block_count");
  c.heads = uint_key("llama.attention.head_count");
  c.kv_heads = uint_or("llama.attention.head_count_kv", c.heads);
  c.intermediate = uint_key("llama.feed_forward_length");
  c.max_positions = uint_key("llama.context_length");
  c.head_dim = uint_or("llama.attention.key_length", c.hidden / c.heads);
  if (uint_or("llama.attention.value_length", c.head_dim) != c.head_dim)
    fail("{}: differs from llama.attention.key_length; tquant's attention needs one head size",
         f.where("llama.attention.value_length"));
  if (c.heads % c.kv_heads != 0)
    fail("{}: {} query heads are not a multiple of {} KV heads", f.where("llama.attention.head_count_kv"), c.heads,
         c.kv_heads);
  if (c.head_dim % 2 != 0) fail("{}: the head size {} is odd; RoPE needs it even", f.path().string(), c.head_dim);
  if (uint_or("llama.rope.dimension_count", c.head_dim) != c.head_dim)
    fail("{}: partial rotary embeddings (rope.dimension_count != head size {}) are not supported",
         f.where("llama.rope.dimension_count"), c.head_dim);
  for (const char* key : {"llama.rope.scaling.type", "llama.rope.scale_linear"})
    if (const Value* v = f.find(key)) {
      const bool none = v->type() == ValueType::STRING && v->as_string(key) == "none";
      if (!none) fail("{}: RoPE scaling is not supported", f.where(key));
    }
  c.norm = NormKind::RMSNorm;
  c.norm_eps = static_cast<float>(f.at("llama.attention.layer_norm_rms_epsilon")
                                      .as_float(f.where("llama.attention.layer_norm_rms_epsilon")));
  c.pre_norm = true;
  c.activation = Activation::SiLU;
  c.gated_ffn = true;
  c.positions = Positions::Rotary;
  c.rope_theta = f.find("llama.rope.freq_base")
                     ? static_cast<float>(f.at("llama.rope.freq_base").as_float(f.where("llama.rope.freq_base")))
                     : 10000.f;
  c.attention_bias = f.find_tensor(block_tensor(0, "attn_q", "bias")) != nullptr;
  c.mlp_bias = f.find_tensor(block_tensor(0, "ffn_up", "bias")) != nullptr;
  c.tie_embeddings = f.find_tensor("output.weight") == nullptr;
  auto id_or = [&](const char* key) {
    const Value* v = f.find(key);
    return v ? static_cast<int>(std::min<uint64_t>(v->as_uint(f.where(key)), INT32_MAX)) : -1;
  };
  c.bos_id = id_or("tokenizer.ggml.bos_token_id");
  c.eos_id = id_or("tokenizer.ggml.eos_token_id");
  c.pad_id = id_or("tokenizer.ggml.padding_token_id");
  return c;
}

}  // namespace tquant::gguf
