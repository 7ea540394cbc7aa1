#include "train/losses.h"

#include <cmath>
#include <vector>

namespace tquant::train {

LossSum cross_entropy(const float* logits, int64_t rows, int64_t classes, const int32_t* labels, float grad_scale,
                      float* dlogits) {
  std::vector<double> loss(rows);
  std::vector<char> hit(rows);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* l = logits + r * classes;
    int64_t best = 0;
    float mx = l[0];
    for (int64_t j = 1; j < classes; ++j)
      if (l[j] > mx) mx = l[j], best = j;
    double sum = 0;
    for (int64_t j = 0; j < classes; ++j) sum += std::exp(static_cast<double>(l[j]) - mx);
    const double log_z = mx + std::log(sum);
    loss[r] = log_z - l[labels[r]];
    hit[r] = best == labels[r];
    if (dlogits) {
      float* d = dlogits + r * classes;
      for (int64_t j = 0; j < classes; ++j)
        d[j] = static_cast<float>(std::exp(static_cast<double>(l[j]) - log_z)) * grad_scale;
      d[labels[r]] -= grad_scale;
    }
  }
  LossSum s;
  for (int64_t r = 0; r < rows; ++r) {
    s.loss += loss[r];
    s.correct += hit[r];
  }
  s.count = rows;
  return s;
}

LossSum squared_error(const float* pred, int64_t rows, const float* targets, float grad_scale, float* dpred) {
  LossSum s;
  for (int64_t r = 0; r < rows; ++r) {
    const double e = static_cast<double>(pred[r]) - targets[r];
    s.loss += e * e;
    if (dpred) dpred[r] = static_cast<float>(2.0 * e) * grad_scale;
  }
  s.count = rows;
  return s;
}

}  // namespace tquant::train
