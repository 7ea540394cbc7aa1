#pragma once
// A loaded transformer: one weight layout that every supported family maps onto, and one
// forward pass with hooks at the quantization points.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"
#include "model/hooks.h"

namespace tquant {

struct PackedMatrix;  // kernels/qblock_formats.h
struct Int8Linear;    // kernels/int8_linear.h

// Where a parameter came from in the Hugging Face checkpoint, set by the loaders so that a
// writer (wquant/quantized_checkpoint.h) can put the current values back under the original
// names. Names are the full tensor names as stored, prefix included.
struct CheckpointSource {
  std::string weight;        // e.g. "model.layers.0.self_attn.q_proj.weight"; "" = not from a file
  std::string bias;          // "" when there is no bias
  bool transposed = false;   // stored [in, out] (GPT-2 Conv1D) rather than [out, in]
  int64_t row_offset = 0;    // a slice of a fused tensor: GPT-2's c_attn holds q, k, v at
  int64_t fused_rows = 0;    //   rows 0, D, 2D of fused_rows = 3D ([out, in] orientation); 0 = not fused
};

struct Linear {
  std::string name;  // stable name, e.g. "layers.0.attn.q_proj"; hook points add ".in"/".out"
  Tensor weight;     // [out, in], as nn.Linear stores it; empty when the layer is held packed
  Tensor bias;       // [out] or empty
  CheckpointSource source;
  // Held packed (Model::load with keep_packed, for tquant eval): the forward multiplies by the
  // low-bit blocks directly and `weight` is empty. Whatever needs FP weights must check
  // Model::has_packed_weights() first.
  std::shared_ptr<const PackedMatrix> packed;
  // A packed layer whose codes carry a Z-Fold ζ per input column (aespa's W ≈ diag(s)·Q·diag(ζ)
  // where no norm could absorb ζ): the forward multiplies the packed blocks by x ⊙ ζ, which is
  // exact, rather than folding ζ into the codes' scales (impossible: one scale per row group).
  // [in] or empty.
  Tensor input_scale;
  // Set by Model::enable_q8_activations (tquant eval --q8-activations) on a packed layer: its
  // input is rounded to int8 blocks first (kernels/qgemv_q8act.h), as llama.cpp does.
  bool q8_activations = false;
  // Set by --real-int8 (quant/real_int8.h): the forward recovers the input's integer codes and
  // runs the int8 GEMM; `weight` keeps the fake-quantized FP values for everything else.
  std::shared_ptr<const Int8Linear> int8;
  int64_t in() const;
  int64_t out() const;
};

struct Norm {
  std::string name;  // e.g. "layers.0.attn.norm"; the hook point is name + ".out"
  Tensor gamma;
  Tensor beta;       // empty for RMSNorm
  // Set by Gamma Migration on post-norm models: the residual shortcut adds output ⊙ this
  // instead of the output itself (the consumers' weights carry the same factor). Empty = 1.
  Tensor residual_scale;
  CheckpointSource source;  // weight: gamma's tensor name, bias: beta's
};

struct Block {
  Norm attn_norm;  // pre-norm: the input norm; post-norm (BERT): after the attention residual
  Norm ffn_norm;
  Linear q, k, v, o;
  Linear up, gate, down;  // gate only for gated FFNs
};

// The token/segment ids of a batch of right-padded sequences.
struct Batch {
  int batch = 0;
  int seq = 0;
  std::vector<int32_t> ids;       // [B*T]
  std::vector<int32_t> type_ids;  // [B*T] or empty (all zero)
  std::vector<int32_t> lengths;   // [B] valid positions; empty means all T

  static Batch single(std::vector<int32_t> ids, std::vector<int32_t> type_ids = {});
};

class Model {
 public:
  // A Hugging Face model folder, or a GGUF llama file (export/gguf_model.h). Quantized linears
  // (a tquant quantized checkpoint, GGUF q4_0/q4_1/q8_0 tensors) are dequantized to float32,
  // or, with keep_packed, held packed for the low-bit kernels (Linear::packed) where the
  // kernels can multiply them.
  static Model load(const std::filesystem::path& dir, bool keep_packed = false);

  // True when some linear or the token embedding is held packed (no FP weight): analysis, PTQ, recipes and export need
  // FP weights and refuse such a model through require_fp_weights.
  bool has_packed_weights() const;
  void require_fp_weights(const char* what) const;
  // Every packed linear whose layout can take int8 activations (packed_q8act_supported) will
  // multiply them llama.cpp-style: the input rounded per block of 32 to int8, integer dot
  // products. This changes the results slightly; the default packed product is exact. Returns
  // how many linears were switched (the others keep float activations).
  int enable_q8_activations();

  const ModelConfig& config() const { return config_; }
  const std::filesystem::path& dir() const { return dir_; }

  // The head's output: logits [B, T, V] for causal and masked LMs, [B, num_labels] for sequence
  // classification, the last hidden state [B, T, D] for a bare encoder.
  Tensor forward(const Batch& batch, const Hooks* hooks = nullptr) const;

  // The same pass in stages, for block-by-block quantization: forward() equals embed(), then
  // run_block() for every layer in order, then run_head(), bit for bit. The residual stream x
  // is [B, T, D] (for BERT, the embedding LayerNorm's output).
  Tensor embed(const Batch& batch, const Hooks* hooks = nullptr) const;
  void run_block(int layer, Tensor& x, const Batch& batch, const Hooks* hooks = nullptr) const;
  Tensor run_head(Tensor& x, const Batch& batch, const Hooks* hooks = nullptr) const;

  // Every linear layer, in forward order, for the quantizers.
  std::vector<Linear*> linears();
  std::vector<Norm*> norms();
  // The embedding tables present, named as recipes name them (embed.tokens|positions|types).
  std::vector<std::pair<std::string, Tensor*>> embedding_tables();

  // Weights (public so that quantization passes can rewrite them in place).
  Tensor token_embedding;     // [V, D]; empty when held packed
  // Held packed (a GGUF q4_0/q4_1/q8_0 token_embd loaded with keep_packed): the lookup decodes
  // only the rows it needs, and a tied head multiplies the same blocks (lm_head.packed is this).
  std::shared_ptr<const PackedMatrix> token_embedding_packed;
  Tensor position_embedding;  // [P, D] or empty
  Tensor type_embedding;      // [types, D] or empty
  // The embeddings' tensor names in the checkpoint (see CheckpointSource); "" when absent.
  std::string token_embedding_source, position_embedding_source, type_embedding_source;
  Norm embedding_norm;
  std::vector<Block> blocks;
  Norm final_norm;
  Linear lm_head;             // causal LM: may share token_embedding's storage
  Linear pooler, classifier;  // sequence classification
  Linear mlm_transform;       // masked LM: dense + act + norm, then a decoder tied to embeddings
  Norm mlm_norm;
  Linear mlm_decoder;

 private:
  friend Model load_model_weights(const std::filesystem::path& dir, bool keep_packed);
  friend Model load_gguf_model(const std::filesystem::path& file, bool keep_packed);  // export/gguf_model.h
  ModelConfig config_;
  std::filesystem::path dir_;
  void name_everything();
};

}  // namespace tquant
