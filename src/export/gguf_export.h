#pragma once
// tquant export --format gguf: a LLaMA model folder (FP, or a tquant quantized checkpoint) as a
// GGUF file laid out as llama.cpp's converter writes one (gguf_llama.h, gguf_vocab.h).
//
// What each tensor becomes:
//   * a linear layer that the checkpoint stores quantized (tquant's packed format), with
//     --type q4_0 / q4_1 / q8_0: its own codes and scales, block for block, no re-quantization.
//     The grid must be the type's: 4-bit symmetric (zero point 8) for q4_0, 4-bit asymmetric
//     for q4_1 (d = scale, m = −scale·zero), 8-bit symmetric for q8_0 (code − 128); a group size
//     that is a multiple of 32 (or one scale per row); rows a multiple of 32; every scale (and
//     q4_1 offset) an fp16 value (`tquant quantize --format q4_0|q4_1|q8_0` guarantees it); no
//     Z-Fold ζ column factor. Anything else is an error naming the tensor. Every such tensor is
//     decoded again and compared bit for bit with the weights `tquant eval` uses.
//   * with --type f32, every tensor as float32 (a quantized checkpoint's dequantized weights:
//     exact). A quantized checkpoint refuses --type f16, which would round them.
//   * the FP tensors of a quantized checkpoint (embedding, head, norms): float32, unchanged.
//   * an FP model's 2-D weights (embedding and head included, as llama-quantize --pure) in
//     --type: f16 rounded to nearest even, block types quantized round-to-nearest with ggml's
//     reference quantizers. Norms and biases are always float32.
// The file is written atomically; on any error nothing is left at --out.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "export/gguf_format.h"
#include "wquant/weight_quant.h"

namespace tquant::gguf {

struct ExportReport {
  bool quantized_source = false;           // a tquant quantized checkpoint
  int exact = 0;                           // linears written from their codes, block for block
  int rounded = 0;                         // FP tensors narrowed or quantized here
  std::map<std::string, int> tensors_by_type;
  uint64_t file_bytes = 0;
  std::vector<std::string> notes;
};

ExportReport export_gguf(const std::filesystem::path& model_dir, TensorType type, const std::filesystem::path& out);

// The rows of a tquant-quantized weight as `type` blocks (type Q4_0, Q4_1 or Q8_0), exactly;
// fails, naming `name`, when the weight's grid is not one the type holds (see above).
std::vector<uint8_t> encode_exact(const wq::QuantizedWeight& q, TensorType type, const std::string& name);

}  // namespace tquant::gguf
