#pragma once
// A Model read from a GGUF llama file (what tquant export writes; any GGUF llama whose tensors
// are f32, f16, q4_0, q4_1 or q8_0): the blocks are dequantized to float32 as ggml dequantizes
// them, and the Q/K rows are put back into Hugging Face's RoPE order, so the forward pass is the
// one a Hugging Face folder with these weights gets. Model::load calls it for a .gguf path.
#include <filesystem>

#include "model/model.h"

namespace tquant {

// With keep_packed, q4_0 / q4_1 / q8_0 linears stay in their blocks (Linear::packed, rows put
// back in HF order block row by block row); the embedding is always dequantized (a lookup table).
Model load_gguf_model(const std::filesystem::path& file, bool keep_packed = false);

}  // namespace tquant
