#pragma once
// New models for training: size presets written as Hugging Face config.json objects, and freshly
// initialised weights under Hugging Face's tensor names (HF's _init_weights: linear and
// embedding weights N(0, initializer_range²) with the padding row zeroed, biases 0, norm
// weights 1), drawn from a counter-based generator so that a seed always gives the same model.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model/config.h"
#include "tokenize/tokenizer.h"

namespace tquant::train {

// "bert" (BertForMaskedLM) or "llama" (LlamaForCausalLM) with size tiny|mini|small|medium, or the
// path of a JSON file whose keys (HF config names, e.g. "hidden_size") override the tiny preset.
// vocab_size, the special-token ids and max_position_embeddings (≥ seq_len) come from the
// tokenizer and the training length.
//   bert:  tiny L2 H128 A2, mini L4 H256 A4, small L4 H512 A8, medium L8 H512 A8 (Turc et al.
//          2019's compact BERTs), FFN 4H, GELU, dropout 0.1;
//   llama: tiny L2 H128 A8 KV4 F384 (the default model's shape), mini L4 H256 A8 KV4 F768,
//          small L6 H512 A8 KV4 F1536, medium L8 H768 A12 KV4 F2048; SiLU, tied embeddings.
nlohmann::ordered_json preset_config(const std::string& arch, const std::string& size, const Tokenizer& tokenizer,
                                     int seq_len);

// The initial tensors of every parameter a model with this config.json (already validated by
// parse_config) has, for BertForMaskedLM, BertForSequenceClassification and LlamaForCausalLM.
std::vector<TensorToWrite> initial_tensors(const ModelConfig& config, float initializer_range, uint64_t seed);

// Only the sequence-classification head (bert.pooler.dense, classifier), for fine-tuning a
// pretrained encoder.
std::vector<TensorToWrite> initial_classifier_tensors(const ModelConfig& config, float initializer_range,
                                                      uint64_t seed);

}  // namespace tquant::train
