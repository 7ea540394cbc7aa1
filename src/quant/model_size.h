#pragma once
// The storage a model needs under a recipe, counted the way tquant's packed checkpoint stores it
// (README, "Quantized checkpoint format"): a quantized weight takes ceil(numel·bits/8) bytes of
// codes, 4 bytes per scale and, when asymmetric, 1 byte per zero point; every other parameter
// (biases, norms, weights and embedding tables the recipe skips) 4 bytes per value. Tied FP
// tensors count once; a quantized tensor is its own packed copy (quantizing one side of a tied
// pair unties it). Activation quantizers are a few scalars per point and are left out, as the
// papers do.
#include <cstdint>
#include <string>

#include "model/model.h"
#include "quant/recipe.h"

namespace tquant {

struct ModelSize {
  int64_t fp32_bytes = 0;       // every parameter in FP32
  int64_t quantized_bytes = 0;  // under the recipe
};

ModelSize model_size(Model& model, const Recipe* recipe);
// "N bytes as stored quantized, M in FP32 (R× smaller)"
std::string describe(const ModelSize& s);

}  // namespace tquant
