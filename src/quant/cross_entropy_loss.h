#pragma once
// The score of the cross-entropy range estimator (for logits): how far the softmax of a row moves
// when the group's elements of that row are fake-quantized.
//
// The reference code scores CE(p, q) = -Σ p log q with p = softmax(x), q = softmax(x̂). CE = H(p)
// + KL(p || q) and H(p) does not depend on the candidate, so we compute the KL directly — same
// minimiser, no large constant cancelling the small differences between candidates:
//   KL = log1p(Σ p_i expm1(d_i)) - Σ p_i d_i,   d_i = x̂_i - x_i (0 outside the group),
// which is stable because it only ever sees the per-element changes d_i.
#include <cstdint>
#include <span>
#include <vector>

#include "quant/affine.h"

namespace tquant {

class CrossEntropyGroup {
 public:
  // `rows` is n_rows x cols, row-major, complete rows (the softmax needs every column); the
  // group's elements are `columns` of every row.
  CrossEntropyGroup(const float* rows, int64_t n_rows, int64_t cols, std::span<const int32_t> columns);
  // Sum over the rows of KL(softmax(x) || softmax(x̂)), x̂ = x with the group fake-quantized.
  double loss(ScaleZero sz, int bits, bool symmetric) const;
  int64_t rows() const { return n_rows_; }

 private:
  int64_t n_rows_, per_row_;
  std::vector<float> x_;      // the group's elements, row by row
  std::vector<double> p_;     // softmax(x)_i of each within its full row
  std::vector<double> logp_;  // log of the same, for d_i > 1 where p·expm1(d) could overflow
};

// Reference: the plain cross-entropy Σ_rows -Σ_i softmax(x)_i log softmax(x̂)_i, in double, with
// fake_quantize_ref; and the entropy Σ_rows H(softmax(x)). Their difference is the KL above.
double cross_entropy_ref(const float* rows, int64_t n_rows, int64_t cols,
                         std::span<const int32_t> columns, ScaleZero sz, int bits, bool symmetric);
double softmax_entropy_ref(const float* rows, int64_t n_rows, int64_t cols);

}  // namespace tquant
