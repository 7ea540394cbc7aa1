#pragma once
// Token-Wise Clipping, fine stage (Wei et al. 2022, METHODS.md §3): starting from the coarse
// stage's ranges, every activation quantizer's scale and zero point become learnable (LSQ+,
// gradient scale 1/sqrt(numel·qmax)) and are trained to minimise the mean squared error between
// the quantized model's logits and the FP model's over the calibration batches: Adam, lr 1e-5,
// 3 epochs, cosine decay to 0, weights held in FP. It runs on the training graph
// (train/quant_graph.h), so the learnt ranges evaluate in `tquant eval` exactly as trained.
#include <vector>

#include "model/model.h"
#include "quant/calibration.h"

namespace tquant {

struct TokenClippingFineOptions {
  int epochs = 3;
  double lr = 1e-5;
};

struct TokenClippingFineResult {
  Calibration calibration;          // the learnt activation parameters
  std::vector<double> epoch_mse;    // mean squared logit error during each epoch
  double mse_before = 0, mse_after = 0;  // over all calibration batches, before and after
};

// `model` must hold FP weights; it is not changed.
TokenClippingFineResult token_wise_clipping_fine(Model& model, const Calibration& coarse,
                                                 const std::vector<Batch>& batches,
                                                 const TokenClippingFineOptions& options = {});

}  // namespace tquant
