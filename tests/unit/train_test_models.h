#pragma once
// Tiny LLaMA and BERT models with HF initialisation, and a two-sequence batch with targets, for
// the training-engine tests.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/counter_rng.h"
#include "model/model.h"
#include "test_paths.h"
#include "train/checkpoint.h"
#include "train/lm_batches.h"
#include "train/model_init.h"
#include "train/trainable.h"

namespace tquant::train::testmodels {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

inline json llama_config(bool tied) {
  return {{"architectures", {"LlamaForCausalLM"}}, {"vocab_size", 40}, {"hidden_size", 16},
          {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
          {"intermediate_size", 24}, {"hidden_act", "silu"}, {"max_position_embeddings", 64},
          {"rms_norm_eps", 1e-6}, {"rope_theta", 10000.0}, {"tie_word_embeddings", tied}};
}

inline json bert_config(const std::string& arch, int labels = 0) {
  json c = {{"architectures", {arch}}, {"vocab_size", 50}, {"hidden_size", 16}, {"num_hidden_layers", 2},
            {"num_attention_heads", 2}, {"intermediate_size", 32}, {"hidden_act", "gelu"},
            {"max_position_embeddings", 16}, {"type_vocab_size", 2}, {"layer_norm_eps", 1e-12},
            {"pad_token_id", 0}, {"hidden_dropout_prob", 0.1}, {"attention_probs_dropout_prob", 0.1}};
  if (labels) {
    c["num_labels"] = labels;
    if (labels == 1) c["problem_type"] = "regression";
  }
  return c;
}

// A model folder with HF-initialised weights; a large initializer range makes every layer's
// nonlinearity matter to the gradient.
inline fs::path make_model(const std::string& name, const json& config, uint64_t seed = 1, float range = 0.3f) {
  const fs::path dir = testing::scratch("train_model") / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::ofstream f(dir / "config.json");
    f << config.dump();
  }
  const ModelConfig c = parse_config(dir / "config.json");
  write_training_folder(dir, config, initial_tensors(c, range, seed), "", json::object(), nullptr, nullptr);
  return dir;
}

struct Case {
  Batch batch;
  std::vector<int32_t> tokens;
  std::vector<float> sequences;
  Targets targets() const {
    Targets t;
    if (!tokens.empty()) t.tokens = &tokens;
    if (!sequences.empty()) t.sequences = &sequences;
    return t;
  }
};

// Two sequences, the second right-padded; LM labels on some valid positions.
inline Case make_case(const ModelConfig& c, bool with_types) {
  Case k;
  k.batch.batch = 2;
  k.batch.seq = 7;
  k.batch.lengths = {7, 4};
  for (int i = 0; i < 14; ++i) k.batch.ids.push_back(1 + static_cast<int>(counter_bits(5, i) % (c.vocab_size - 1)));
  if (with_types)
    for (int i = 0; i < 14; ++i) k.batch.type_ids.push_back(i % 7 >= 3 ? 1 : 0);
  if (c.head == Head::SequenceClassification) {
    k.sequences = c.regression ? std::vector<float>{2.5f, -0.7f} : std::vector<float>{2.f, 0.f};
  } else {
    for (int i = 0; i < 14; ++i) {
      const bool valid = i % 7 < k.batch.lengths[i / 7];
      const bool target = valid && (c.head == Head::CausalLM ? true : counter_uniform(6, i) < 0.5f);
      k.tokens.push_back(target ? static_cast<int32_t>(counter_bits(7, i) % c.vocab_size) : kIgnoreLabel);
    }
  }
  return k;
}

}  // namespace tquant::train::testmodels
