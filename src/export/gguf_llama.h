#pragma once
// How a LLaMA model is laid out in GGUF, as llama.cpp's converter (convert_hf_to_gguf.py) writes
// it and its "llama" architecture reads it: tensor names, the hyperparameter keys, and the row
// permutation of the Q and K projections.
//
// Tensors ([out, in] weights; GGUF lists the dimensions reversed):
//   token_embd.weight, output_norm.weight, output.weight (absent when the head is tied to the
//   embedding), and per block N: blk.N.attn_norm.weight, blk.N.attn_q/attn_k/attn_v/attn_output
//   .weight (.bias), blk.N.ffn_norm.weight, blk.N.ffn_gate/ffn_up/ffn_down.weight (.bias).
//
// RoPE layout: Hugging Face rotates dimension i of a head with dimension i + head_dim/2;
// llama.cpp's llama rotates adjacent pairs (2i, 2i + 1). The converter therefore permutes the
// rows of attn_q (per query head) and attn_k (per KV head): GGUF row h·hd + 2i + j holds HF row
// h·hd + j·hd/2 + i (i < hd/2, j in {0, 1}). A row permutation moves whole rows, so it moves
// quantization blocks (which run along a row) intact.
#include <cstdint>
#include <string>
#include <vector>

#include "export/gguf_format.h"
#include "model/model.h"

namespace tquant::gguf {

class GgufFile;

enum class RopeRows { None, QueryHeads, KeyHeads };
enum class Width { Hidden, Query, KeyValue, FFN };  // hidden, heads·head_dim, kv_heads·head_dim, intermediate
int64_t width_of(Width w, const ModelConfig& c);

struct LinearSlot {
  const char* name;  // "attn_q", ...
  Linear Block::*member;
  RopeRows rope;
  Width out, in;
  bool attention;    // its bias follows attention_bias (else mlp_bias)
};
struct NormSlot {
  const char* name;  // "attn_norm", "ffn_norm"
  Norm Block::*member;
};
extern const LinearSlot kLlamaLinears[7];
extern const NormSlot kLlamaNorms[2];

// "blk.<layer>.<name>.<suffix>", suffix "weight" or "bias".
std::string block_tensor(int layer, const char* name, const char* suffix);

// perm[gguf row] = HF row, for a projection of `heads` heads of head_dim rows each (head_dim even).
std::vector<int64_t> rope_permutation(int64_t heads, int64_t head_dim);
// Rows of a row-major [rows, row_bytes] buffer reordered: out row r = in row perm[r] (to GGUF),
// or, with inverse, out row perm[r] = in row r (back to Hugging Face's order).
std::vector<uint8_t> permute_rows(const std::vector<uint8_t>& in, const std::vector<int64_t>& perm, bool inverse);
Tensor permute_rows(const Tensor& in, const std::vector<int64_t>& perm, bool inverse);

// The general.architecture = "llama" hyperparameters of config (llama.context_length, ...).
// Fails, naming the field, for what llama.cpp's llama cannot express (another activation,
// partial rotary, a non-llama architecture).
void append_llama_hparams(const ModelConfig& config, Metadata& md);

// The inverse, for a GGUF file with general.architecture "llama": vocab is the number of rows of
// token_embd; attention and MLP biases, and a tied head, are read off the tensors present.
ModelConfig llama_config_from_gguf(const GgufFile& file, int64_t vocab);

}  // namespace tquant::gguf
