#pragma once
// Token-Wise Clipping, coarse stage (Wei et al. 2022, METHODS.md §3). For each activation
// quantizer and calibration batch: drop padding, view the activation as (tokens, features),
// take each token's max and min; the upper bound is the largest token max not above the
// p-quantile of the token maxima, the lower bound symmetrically; clip, take min/max, and
// average over batches. One ratio p is shared by all quantizers and chosen from the grid
// p = 1 - step·i by the summed MSE between the quantized model's logits and the FP logits over
// the calibration batches. Softmax outputs are not clipped (plain min-max). Weights stay FP
// during the search, as in the paper.
//
// For attention scores ([B, H, T, T]) a "token" is one query row of one head (its visible keys).
#include <string>
#include <vector>

#include "model/model.h"
#include "quant/calibration.h"
#include "quant/recipe.h"

namespace tquant {

struct TokenClippingOptions {
  double step = 0.01;
  int ratios = 0;  // grid size; 0 picks the paper's: 8-bit 10, 6-bit 30, 4-bit 90 (by the recipe's bits)
};

struct TokenClippingResult {
  Calibration calibration;          // per-tensor ranges at the chosen ratio
  double ratio = 1.0;               // the chosen p
  std::vector<double> grid;         // every p tried ...
  std::vector<double> logits_mse;   // ... and its score (mean squared logit error)
};

TokenClippingResult token_wise_clipping_coarse(const Model& model, const Recipe& recipe,
                                               const std::vector<Batch>& batches,
                                               const TokenClippingOptions& options = {});

// The clipped (lower, upper) bounds of one batch of per-token minima and maxima at ratio p
// (numpy's linear-interpolation quantile).
std::pair<float, float> clipped_token_bounds(std::vector<float> token_min, std::vector<float> token_max, double p);

}  // namespace tquant
