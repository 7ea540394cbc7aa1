#include "quant/cross_entropy_loss.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "quant/affine_fast.h"

namespace tquant {

namespace {
// log Σ exp(x) of one row, in double, shifted by the max for stability.
double log_sum_exp(const float* x, int64_t n) {
  const double m = *std::max_element(x, x + n);
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(x[i] - m);
  return m + std::log(s);
}
}  // namespace

CrossEntropyGroup::CrossEntropyGroup(const float* rows, int64_t n_rows, int64_t cols,
                                     std::span<const int32_t> columns)
    : n_rows_(n_rows), per_row_(static_cast<int64_t>(columns.size())) {
  if (n_rows < 1 || cols < 1 || columns.empty())
    fail("cross-entropy search: no data ({} rows, {} columns, {} group columns)", n_rows, cols,
         columns.size());
  x_.reserve(n_rows * per_row_);
  p_.reserve(n_rows * per_row_);
  logp_.reserve(n_rows * per_row_);
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* row = rows + r * cols;
    const double lse = log_sum_exp(row, cols);
    for (int32_t c : columns) {
      x_.push_back(row[c]);
      logp_.push_back(row[c] - lse);
      p_.push_back(std::exp(row[c] - lse));
    }
  }
}

double CrossEntropyGroup::loss(ScaleZero sz, int bits, bool symmetric) const {
  const float s = sz.scale, z = sz.zero_point;
  const float qmin = static_cast<float>(code_min(bits, symmetric));
  const float qmax = static_cast<float>(code_max(bits, symmetric));
  double total = 0.0;
  for (int64_t r = 0; r < n_rows_; ++r) {
    double shift = 0.0, linear = 0.0;  // Σ p expm1(d), Σ p d
    for (int64_t i = r * per_row_; i < (r + 1) * per_row_; ++i) {
      const float xq = s * (quantize_code_fast(x_[i], s, z, qmin, qmax) - z);
      const double d = static_cast<double>(xq) - x_[i];
      shift += d <= 1.0 ? p_[i] * std::expm1(d) : std::exp(logp_[i] + d) - p_[i];
      linear += p_[i] * d;
    }
    // KL >= 0 in exact arithmetic; rounding can leave -1e-17.
    total += std::max(0.0, std::log1p(shift) - linear);
  }
  return total;
}

double cross_entropy_ref(const float* rows, int64_t n_rows, int64_t cols,
                         std::span<const int32_t> columns, ScaleZero sz, int bits, bool symmetric) {
  const float qmin = static_cast<float>(code_min(bits, symmetric));
  const float qmax = static_cast<float>(code_max(bits, symmetric));
  double total = 0.0;
  std::vector<float> q(cols);
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* x = rows + r * cols;
    std::copy(x, x + cols, q.begin());
    for (int32_t c : columns) q[c] = fake_quantize_ref(x[c], sz.scale, sz.zero_point, qmin, qmax);
    const double lse_x = log_sum_exp(x, cols), lse_q = log_sum_exp(q.data(), cols);
    for (int64_t c = 0; c < cols; ++c) total -= std::exp(x[c] - lse_x) * (q[c] - lse_q);
  }
  return total;
}

double softmax_entropy_ref(const float* rows, int64_t n_rows, int64_t cols) {
  double total = 0.0;
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* x = rows + r * cols;
    const double lse = log_sum_exp(x, cols);
    for (int64_t c = 0; c < cols; ++c) total -= std::exp(x[c] - lse) * (x[c] - lse);
  }
  return total;
}

}  // namespace tquant
