#pragma once
// Training losses with their gradients. Each returns sums (the caller divides by the number of
// targets of the whole optimizer step, so that gradient accumulation gives the mean of the step).
#include <cstdint>

namespace tquant::train {

struct LossSum {
  double loss = 0;      // Σ per-target loss
  int64_t count = 0;    // targets scored
  int64_t correct = 0;  // argmax == label (classification and LM heads)
  LossSum& operator+=(const LossSum& o) {
    loss += o.loss;
    count += o.count;
    correct += o.correct;
    return *this;
  }
  double mean() const { return count ? loss / count : 0.0; }
  double accuracy() const { return count ? static_cast<double>(correct) / count : 0.0; }
};

// Softmax cross-entropy of logits [rows, classes] against labels[rows] (every row is a target).
// When dlogits is non-null it receives (softmax − onehot) · grad_scale.
LossSum cross_entropy(const float* logits, int64_t rows, int64_t classes, const int32_t* labels, float grad_scale,
                      float* dlogits);

// Squared error (pred − target)² for regression heads; dpred = 2 (pred − target) · grad_scale.
LossSum squared_error(const float* pred, int64_t rows, const float* targets, float grad_scale, float* dpred);

}  // namespace tquant::train
