#include "wquant/weight_quant.h"

#include <cblas.h>

#include <algorithm>

#include "core/error.h"

namespace tquant::wq {

void check_format(const WeightFormat& f, int64_t cols, const char* where) {
  if (f.bits < kMinWeightBits || f.bits > kMaxWeightBits)
    fail("{}: weight bits {} are outside {}..{}", where, f.bits, kMinWeightBits, kMaxWeightBits);
  if (f.group < 0) fail("{}: group size {} is negative", where, f.group);
  if (f.group > 0 && cols % f.group != 0)
    fail("{}: group size {} does not divide the {} input columns", where, f.group, cols);
}

Tensor QuantizedWeight::dequantize() const {
  const int64_t R = grid.rows, C = grid.cols;
  Tensor w = Tensor::uninitialized({R, C});
  float* out = w.data();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t g = grid.index(r, c);
      float v = grid.scale[g] * (static_cast<float>(codes[r * C + c]) - grid.zero[g]);
      if (!zeta.empty()) v *= zeta[c];
      out[r * C + c] = v;
    }
  return w;
}

int64_t Objective::heads() const {
  return std::max<int64_t>({static_cast<int64_t>(H.size()), static_cast<int64_t>(G.size()), 1});
}

// sum_h tr(G_h dW_h H_h dW_h^T) = sum_h <G_h dW_h, dW_h H_h>, in double for the reported totals.
double Objective::evaluate(const Tensor& W, const Tensor& W_hat) const {
  const int64_t R = W.dim(0), C = W.dim(1), nh = heads(), rh = R / nh;
  if (H.empty()) fail("objective has no H");
  if (R % nh != 0) fail("objective: {} rows do not split into {} heads", R, nh);
  std::vector<float> dW(static_cast<size_t>(R * C));
  for (int64_t i = 0; i < R * C; ++i) dW[i] = W_hat[i] - W[i];
  std::vector<float> dWH(static_cast<size_t>(rh * C)), GdW(static_cast<size_t>(rh * C));
  double total = 0;
  for (int64_t h = 0; h < nh; ++h) {
    const float* d = dW.data() + h * rh * C;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rh, C, C, 1.f, d, C, H_of(h).data(), C, 0.f, dWH.data(), C);
    const float* left = d;
    if (!G.empty()) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rh, C, rh, 1.f, G[h].data(), rh, d, C, 0.f, GdW.data(), C);
      left = GdW.data();
    }
    double s = 0;
    for (int64_t i = 0; i < rh * C; ++i) s += static_cast<double>(left[i]) * dWH[i];
    total += s;
  }
  return total;
}

}  // namespace tquant::wq
