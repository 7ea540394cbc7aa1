#include "model/config.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace tquant {
namespace {

using nlohmann::json;

// Typed field access that names the file and the field on error.
class ConfigReader {
 public:
  ConfigReader(const std::filesystem::path& path, const json& j) : path_(path), j_(j) {}

  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

  int integer(const char* key) const {
    if (!has(key)) fail("{}: required field \"{}\" is missing", path_.string(), key);
    return integer_or(key, 0);
  }
  int integer_or(const char* key, int fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_[key];
    if (!v.is_number_integer())
      fail("{}: field \"{}\" must be an integer, found {}", path_.string(), key, v.dump());
    const int64_t x = v.get<int64_t>();
    if (x < 0 || x > (int64_t{1} << 31) - 1)
      fail("{}: field \"{}\" = {} is out of range", path_.string(), key, x);
    return static_cast<int>(x);
  }
  double number_or(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_[key];
    if (!v.is_number()) fail("{}: field \"{}\" must be a number, found {}", path_.string(), key, v.dump());
    return v.get<double>();
  }
  bool boolean_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_[key];
    if (!v.is_boolean()) fail("{}: field \"{}\" must be true or false, found {}", path_.string(), key, v.dump());
    return v.get<bool>();
  }
  std::string string_or(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_[key];
    if (!v.is_string()) fail("{}: field \"{}\" must be a string, found {}", path_.string(), key, v.dump());
    return v.get<std::string>();
  }
  [[noreturn]] void bad(const char* key, const std::string& why) const {
    fail("{}: field \"{}\": {}", path_.string(), key, why);
  }

 private:
  const std::filesystem::path& path_;
  const json& j_;
};

Activation parse_activation(const ConfigReader& r, const char* key, const std::string& name) {
  if (name == "silu" || name == "swish") return Activation::SiLU;
  if (name == "gelu") return Activation::GeLU;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast")
    return Activation::GeLUTanh;
  if (name == "relu") return Activation::ReLU;
  r.bad(key, "unsupported activation \"" + name + "\" (supported: silu, gelu, gelu_new, gelu_pytorch_tanh, relu)");
}

void parse_llama(const ConfigReader& r, ModelConfig& c) {
  c.arch = Arch::Llama;
  c.head = Head::CausalLM;
  c.vocab_size = r.integer("vocab_size");
  c.hidden = r.integer("hidden_size");
  c.layers = r.integer("num_hidden_layers");
  c.heads = r.integer("num_attention_heads");
  c.kv_heads = r.integer_or("num_key_value_heads", c.heads);
  c.intermediate = r.integer("intermediate_size");
  c.max_positions = r.integer_or("max_position_embeddings", 2048);
  c.head_dim = r.integer_or("head_dim", c.heads ? c.hidden / c.heads : 0);
  c.norm = NormKind::RMSNorm;
  c.norm_eps = static_cast<float>(r.number_or("rms_norm_eps", 1e-6));
  c.pre_norm = true;
  c.activation = parse_activation(r, "hidden_act", r.string_or("hidden_act", "silu"));
  c.gated_ffn = true;
  c.positions = Positions::Rotary;
  c.rope_theta = static_cast<float>(r.number_or("rope_theta", 10000.0));
  if (r.has("rope_scaling")) r.bad("rope_scaling", "RoPE scaling is not supported; only null is");
  c.attention_bias = r.boolean_or("attention_bias", false);
  c.mlp_bias = r.boolean_or("mlp_bias", false);
  c.tie_embeddings = r.boolean_or("tie_word_embeddings", false);
  if (r.integer_or("pretraining_tp", 1) != 1) r.bad("pretraining_tp", "only 1 is supported");
}

void parse_bert(const ConfigReader& r, ModelConfig& c, const json& j) {
  c.arch = Arch::Bert;
  c.vocab_size = r.integer("vocab_size");
  c.hidden = r.integer("hidden_size");
  c.layers = r.integer("num_hidden_layers");
  c.heads = r.integer("num_attention_heads");
  c.kv_heads = c.heads;
  c.head_dim = c.heads ? c.hidden / c.heads : 0;
  c.intermediate = r.integer("intermediate_size");
  c.max_positions = r.integer_or("max_position_embeddings", 512);
  c.type_vocab_size = r.integer_or("type_vocab_size", 2);
  c.norm = NormKind::LayerNorm;
  c.norm_eps = static_cast<float>(r.number_or("layer_norm_eps", 1e-12));
  c.pre_norm = false;
  c.embedding_norm = true;
  c.final_norm = false;
  c.activation = parse_activation(r, "hidden_act", r.string_or("hidden_act", "gelu"));
  c.positions = Positions::Learned;
  const std::string pos_type = r.string_or("position_embedding_type", "absolute");
  if (pos_type != "absolute") r.bad("position_embedding_type", "only \"absolute\" is supported");
  c.attention_bias = true;
  c.mlp_bias = true;
  c.tie_embeddings = r.boolean_or("tie_word_embeddings", true);
  if (c.head == Head::SequenceClassification) {
    int labels = 2;
    if (r.has("id2label")) {
      if (!j["id2label"].is_object()) r.bad("id2label", "must be an object");
      labels = static_cast<int>(j["id2label"].size());
    }
    labels = r.integer_or("num_labels", labels);
    if (labels < 1) r.bad("num_labels", "must be at least 1");
    c.num_labels = labels;
    const std::string problem = r.string_or("problem_type", labels == 1 ? "regression" : "single_label_classification");
    if (problem == "regression") {
      if (labels != 1) r.bad("problem_type", "regression needs num_labels = 1");
      c.regression = true;
    } else if (problem != "single_label_classification") {
      r.bad("problem_type", "unsupported \"" + problem + "\" (supported: regression, single_label_classification)");
    }
  }
}

void parse_opt(const ConfigReader& r, ModelConfig& c) {
  c.arch = Arch::OPT;
  c.head = Head::CausalLM;
  c.vocab_size = r.integer("vocab_size");
  c.hidden = r.integer("hidden_size");
  c.layers = r.integer("num_hidden_layers");
  c.heads = r.integer("num_attention_heads");
  c.kv_heads = c.heads;
  c.head_dim = c.heads ? c.hidden / c.heads : 0;
  c.intermediate = r.integer("ffn_dim");
  c.max_positions = r.integer_or("max_position_embeddings", 2048);
  c.norm = NormKind::LayerNorm;
  c.norm_eps = 1e-5f;
  c.pre_norm = r.boolean_or("do_layer_norm_before", true);
  if (!c.pre_norm) r.bad("do_layer_norm_before", "post-LayerNorm OPT (opt-350m) is not supported");
  if (r.integer_or("word_embed_proj_dim", c.hidden) != c.hidden)
    r.bad("word_embed_proj_dim", "must equal hidden_size (project_in/project_out are not supported)");
  c.final_norm = true;
  c.activation = parse_activation(r, "activation_function", r.string_or("activation_function", "relu"));
  c.positions = Positions::Learned;
  c.position_offset = 2;
  c.attention_bias = r.boolean_or("enable_bias", true);
  c.mlp_bias = c.attention_bias;
  c.tie_embeddings = r.boolean_or("tie_word_embeddings", true);
}

void parse_gpt2(const ConfigReader& r, ModelConfig& c) {
  c.arch = Arch::GPT2;
  c.head = Head::CausalLM;
  c.vocab_size = r.integer("vocab_size");
  c.hidden = r.integer_or("n_embd", 768);
  c.layers = r.integer_or("n_layer", 12);
  c.heads = r.integer_or("n_head", 12);
  c.kv_heads = c.heads;
  c.head_dim = c.heads ? c.hidden / c.heads : 0;
  c.intermediate = r.integer_or("n_inner", 4 * c.hidden);
  c.max_positions = r.integer_or("n_positions", 1024);
  c.norm = NormKind::LayerNorm;
  c.norm_eps = static_cast<float>(r.number_or("layer_norm_epsilon", 1e-5));
  c.pre_norm = true;
  c.final_norm = true;
  c.activation = parse_activation(r, "activation_function", r.string_or("activation_function", "gelu_new"));
  c.positions = Positions::Learned;
  c.attention_bias = true;
  c.mlp_bias = true;
  c.tie_embeddings = r.boolean_or("tie_word_embeddings", true);
  if (!r.boolean_or("scale_attn_weights", true)) r.bad("scale_attn_weights", "only true is supported");
  if (r.boolean_or("scale_attn_by_inverse_layer_idx", false))
    r.bad("scale_attn_by_inverse_layer_idx", "only false is supported");
}

}  // namespace

const char* supported_architectures() {
  return "LlamaForCausalLM, BertModel, BertForSequenceClassification, BertForMaskedLM, "
         "OPTForCausalLM, GPT2LMHeadModel";
}

ModelConfig parse_config(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the model config", path.string());
  json j;
  try {
    j = json::parse(in);
  } catch (const json::parse_error& e) {
    fail("{}: malformed JSON: {}", path.string(), e.what());
  }
  if (!j.is_object()) fail("{}: must hold a JSON object", path.string());
  ConfigReader r(path, j);
  if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].size() != 1 ||
      !j["architectures"][0].is_string())
    fail("{}: field \"architectures\" must be a list with one name (supported: {})", path.string(),
         supported_architectures());

  ModelConfig c;
  c.architecture = j["architectures"][0].get<std::string>();
  const std::string& a = c.architecture;
  if (a == "LlamaForCausalLM") {
    parse_llama(r, c);
  } else if (a == "BertModel" || a == "BertForSequenceClassification" || a == "BertForMaskedLM") {
    c.head = a == "BertModel" ? Head::None
             : a == "BertForMaskedLM" ? Head::MaskedLM
                                      : Head::SequenceClassification;
    parse_bert(r, c, j);
  } else if (a == "OPTForCausalLM") {
    parse_opt(r, c);
  } else if (a == "GPT2LMHeadModel") {
    parse_gpt2(r, c);
  } else {
    fail("{}: architecture \"{}\" is not supported (supported: {})", path.string(), a,
         supported_architectures());
  }

  if (c.vocab_size <= 0 || c.hidden <= 0 || c.layers <= 0 || c.heads <= 0 || c.intermediate <= 0)
    fail("{}: vocab size, hidden size, layers, heads and FFN size must all be positive", path.string());
  if (c.kv_heads <= 0 || c.heads % c.kv_heads != 0)
    fail("{}: num_attention_heads ({}) must be a multiple of num_key_value_heads ({})", path.string(),
         c.heads, c.kv_heads);
  if (c.head_dim <= 0 || (c.arch != Arch::Llama && c.head_dim * c.heads != c.hidden))
    fail("{}: hidden size {} is not divisible by {} heads", path.string(), c.hidden, c.heads);
  if (c.positions == Positions::Rotary && c.head_dim % 2 != 0)
    fail("{}: rotary embeddings need an even head dimension, got {}", path.string(), c.head_dim);
  c.bos_id = r.integer_or("bos_token_id", -1);
  c.eos_id = j.contains("eos_token_id") && j["eos_token_id"].is_number_integer() ? j["eos_token_id"].get<int>() : -1;
  c.pad_id = r.integer_or("pad_token_id", -1);
  return c;
}

}  // namespace tquant
