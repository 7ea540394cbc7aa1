#include "train/model_init.h"

#include <fmt/format.h>

#include <filesystem>

#include "core/counter_rng.h"
#include "core/error.h"
#include "core/text_file.h"

namespace tquant::train {
namespace {

using json = nlohmann::ordered_json;

struct Size {
  int layers, hidden, heads, kv_heads, intermediate;
};

Size preset(const std::string& arch, const std::string& size) {
  if (arch == "bert") {
    if (size == "tiny") return {2, 128, 2, 2, 512};
    if (size == "mini") return {4, 256, 4, 4, 1024};
    if (size == "small") return {4, 512, 8, 8, 2048};
    if (size == "medium") return {8, 512, 8, 8, 2048};
  } else if (arch == "llama") {
    if (size == "tiny") return {2, 128, 8, 4, 384};
    if (size == "mini") return {4, 256, 8, 4, 768};
    if (size == "small") return {6, 512, 8, 4, 1536};
    if (size == "medium") return {8, 768, 12, 4, 2048};
  } else {
    fail("--arch \"{}\": use bert or llama", arch);
  }
  fail("--size \"{}\": use tiny, mini, small, medium or a JSON file", size);
}

int32_t require_token(const Tokenizer& t, const char* token) {
  const auto id = t.token_to_id(token);
  if (!id) fail("the tokenizer has no {} token, which a BERT model needs", token);
  return *id;
}

// Parameters are named by the HF layout of each family; `kind` says how HF initialises them.
enum class Init { Normal, Zero, One };
struct Spec {
  std::string name;
  Shape shape;
  Init init;
  int64_t zero_row = -1;  // an embedding's padding row
};

void linear(std::vector<Spec>& s, const std::string& name, int64_t out, int64_t in, bool bias) {
  s.push_back({name + ".weight", {out, in}, Init::Normal});
  if (bias) s.push_back({name + ".bias", {out}, Init::Zero});
}
void layer_norm(std::vector<Spec>& s, const std::string& name, int64_t d) {
  s.push_back({name + ".weight", {d}, Init::One});
  s.push_back({name + ".bias", {d}, Init::Zero});
}

void bert_classifier_specs(const ModelConfig& c, std::vector<Spec>& s) {
  linear(s, "bert.pooler.dense", c.hidden, c.hidden, true);
  linear(s, "classifier", c.num_labels, c.hidden, true);
}

std::vector<Spec> bert_specs(const ModelConfig& c) {
  const int64_t D = c.hidden, F = c.intermediate;
  std::vector<Spec> s;
  s.push_back({"bert.embeddings.word_embeddings.weight", {c.vocab_size, D}, Init::Normal, c.pad_id});
  s.push_back({"bert.embeddings.position_embeddings.weight", {c.max_positions, D}, Init::Normal});
  s.push_back({"bert.embeddings.token_type_embeddings.weight", {std::max(1, c.type_vocab_size), D}, Init::Normal});
  layer_norm(s, "bert.embeddings.LayerNorm", D);
  for (int i = 0; i < c.layers; ++i) {
    const std::string p = fmt::format("bert.encoder.layer.{}.", i);
    linear(s, p + "attention.self.query", D, D, true);
    linear(s, p + "attention.self.key", D, D, true);
    linear(s, p + "attention.self.value", D, D, true);
    linear(s, p + "attention.output.dense", D, D, true);
    layer_norm(s, p + "attention.output.LayerNorm", D);
    linear(s, p + "intermediate.dense", F, D, true);
    linear(s, p + "output.dense", D, F, true);
    layer_norm(s, p + "output.LayerNorm", D);
  }
  if (c.head == Head::MaskedLM) {
    linear(s, "cls.predictions.transform.dense", D, D, true);
    layer_norm(s, "cls.predictions.transform.LayerNorm", D);
    s.push_back({"cls.predictions.bias", {c.vocab_size}, Init::Zero});
  } else if (c.head == Head::SequenceClassification) {
    bert_classifier_specs(c, s);
  }
  return s;
}

std::vector<Spec> llama_specs(const ModelConfig& c) {
  const int64_t D = c.hidden, F = c.intermediate;
  const int64_t qd = int64_t{c.heads} * c.head_dim, kvd = int64_t{c.kv_heads} * c.head_dim;
  std::vector<Spec> s;
  s.push_back({"model.embed_tokens.weight", {c.vocab_size, D}, Init::Normal, c.pad_id});
  for (int i = 0; i < c.layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    s.push_back({p + "input_layernorm.weight", {D}, Init::One});
    s.push_back({p + "post_attention_layernorm.weight", {D}, Init::One});
    linear(s, p + "self_attn.q_proj", qd, D, c.attention_bias);
    linear(s, p + "self_attn.k_proj", kvd, D, c.attention_bias);
    linear(s, p + "self_attn.v_proj", kvd, D, c.attention_bias);
    linear(s, p + "self_attn.o_proj", D, qd, c.attention_bias);
    linear(s, p + "mlp.gate_proj", F, D, c.mlp_bias);
    linear(s, p + "mlp.up_proj", F, D, c.mlp_bias);
    linear(s, p + "mlp.down_proj", D, F, c.mlp_bias);
  }
  s.push_back({"model.norm.weight", {D}, Init::One});
  if (!c.tie_embeddings) s.push_back({"lm_head.weight", {c.vocab_size, D}, Init::Normal});
  return s;
}

std::vector<TensorToWrite> materialise(const std::vector<Spec>& specs, float range, uint64_t seed) {
  std::vector<TensorToWrite> out;
  for (const Spec& s : specs) {
    Tensor t(s.shape);
    // Each tensor has its own stream, keyed by its name, so adding a tensor changes no other.
    uint64_t key = stream_key(seed);
    for (char ch : s.name) key = mix64(key ^ static_cast<unsigned char>(ch));
    const int64_t n = t.numel();
    switch (s.init) {
      case Init::Normal:
        for (int64_t i = 0; i < n; ++i) t[i] = range * counter_normal(key, i);
        break;
      case Init::One:
        for (int64_t i = 0; i < n; ++i) t[i] = 1.f;
        break;
      case Init::Zero:
        break;
    }
    if (s.zero_row >= 0 && s.zero_row < s.shape[0])
      for (int64_t j = 0; j < s.shape[1]; ++j) t[s.zero_row * s.shape[1] + j] = 0.f;
    out.push_back(f32_tensor(s.name, t));
  }
  return out;
}

}  // namespace

json preset_config(const std::string& arch, const std::string& size, const Tokenizer& tokenizer, int seq_len) {
  namespace fs = std::filesystem;
  json overrides = json::object();
  Size z;
  if (size.ends_with(".json") || fs::is_regular_file(size)) {
    z = preset(arch, "tiny");
    try {
      overrides = json::parse(read_text_file(size, "model size JSON"));
    } catch (const json::exception& e) {
      fail("{}: not valid JSON: {}", size, e.what());
    }
    if (!overrides.is_object()) fail("{}: must be a JSON object of config.json fields", size);
  } else {
    z = preset(arch, size);
  }
  const int vocab = tokenizer.vocab_size();
  json c;
  if (arch == "bert") {
    c["architectures"] = {"BertForMaskedLM"};
    c["model_type"] = "bert";
    c["vocab_size"] = vocab;
    c["hidden_size"] = z.hidden;
    c["num_hidden_layers"] = z.layers;
    c["num_attention_heads"] = z.heads;
    c["intermediate_size"] = z.intermediate;
    c["hidden_act"] = "gelu";
    c["hidden_dropout_prob"] = 0.1;
    c["attention_probs_dropout_prob"] = 0.1;
    c["max_position_embeddings"] = std::max(512, seq_len);
    c["type_vocab_size"] = 2;
    c["initializer_range"] = 0.02;
    c["layer_norm_eps"] = 1e-12;
    c["position_embedding_type"] = "absolute";
    c["pad_token_id"] = require_token(tokenizer, "[PAD]");
    require_token(tokenizer, "[CLS]");
    require_token(tokenizer, "[SEP]");
    require_token(tokenizer, "[MASK]");
    c["tie_word_embeddings"] = true;
  } else {
    c["architectures"] = {"LlamaForCausalLM"};
    c["model_type"] = "llama";
    c["vocab_size"] = vocab;
    c["hidden_size"] = z.hidden;
    c["num_hidden_layers"] = z.layers;
    c["num_attention_heads"] = z.heads;
    c["num_key_value_heads"] = z.kv_heads;
    c["intermediate_size"] = z.intermediate;
    c["hidden_act"] = "silu";
    c["max_position_embeddings"] = std::max(2048, seq_len);
    c["rms_norm_eps"] = 1e-6;
    c["rope_theta"] = 10000.0;
    c["initializer_range"] = 0.02;
    c["attention_dropout"] = 0.0;
    c["tie_word_embeddings"] = true;
    if (tokenizer.bos_id() >= 0) c["bos_token_id"] = tokenizer.bos_id();
    if (tokenizer.eos_id() >= 0) c["eos_token_id"] = tokenizer.eos_id();
    if (tokenizer.pad_id() >= 0) c["pad_token_id"] = tokenizer.pad_id();
  }
  for (const auto& [k, v] : overrides.items()) c[k] = v;
  c["torch_dtype"] = "float32";
  return c;
}

std::vector<TensorToWrite> initial_tensors(const ModelConfig& c, float range, uint64_t seed) {
  if (c.arch == Arch::Bert) {
    if (c.head == Head::None) fail("a bare BertModel has nothing to train; use BertForMaskedLM");
    return materialise(bert_specs(c), range, seed);
  }
  if (c.arch == Arch::Llama) return materialise(llama_specs(c), range, seed);
  fail("{}: tquant trains BERT and LLaMA models only", c.architecture);
}

std::vector<TensorToWrite> initial_classifier_tensors(const ModelConfig& c, float range, uint64_t seed) {
  std::vector<Spec> s;
  bert_classifier_specs(c, s);
  return materialise(s, range, seed);
}

}  // namespace tquant::train
