#pragma once
// The architecture-independent description of a transformer, parsed from HF config.json.
// Every supported family maps onto these fields; the forward pass reads only these.
#include <filesystem>
#include <string>

namespace tquant {

enum class Arch { Llama, Bert, OPT, GPT2 };
enum class Head { CausalLM, MaskedLM, SequenceClassification, None };
enum class NormKind { LayerNorm, RMSNorm };
enum class Activation { SiLU, GeLU, GeLUTanh, ReLU };
enum class Positions { Rotary, Learned };

struct ModelConfig {
  std::string architecture;  // as in config.json, e.g. "LlamaForCausalLM"
  Arch arch = Arch::Llama;
  Head head = Head::CausalLM;

  int vocab_size = 0;
  int hidden = 0;
  int layers = 0;
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int intermediate = 0;
  int max_positions = 0;

  NormKind norm = NormKind::LayerNorm;
  float norm_eps = 1e-5f;
  bool pre_norm = true;       // false: BERT's post-LayerNorm blocks
  bool embedding_norm = false;  // BERT normalises the embedding sum
  bool final_norm = true;     // pre-norm models end with a norm
  Activation activation = Activation::GeLU;
  bool gated_ffn = false;     // LLaMA: down(act(gate(x)) * up(x))

  Positions positions = Positions::Learned;
  int position_offset = 0;    // OPT's learned positions start at 2
  float rope_theta = 10000.f;
  int type_vocab_size = 0;    // BERT token types; 0 = none

  bool attention_bias = false;
  bool mlp_bias = false;
  bool tie_embeddings = false;

  int num_labels = 0;         // sequence classification
  bool regression = false;    // num_labels == 1

  int bos_id = -1;
  int eos_id = -1;
  int pad_id = -1;

  bool is_causal() const { return arch != Arch::Bert; }
};

// Parses and validates config.json; unsupported architectures and bad fields are errors that
// name the file and the field.
ModelConfig parse_config(const std::filesystem::path& config_json);

const char* supported_architectures();

}  // namespace tquant
