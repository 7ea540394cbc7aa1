#pragma once
// Seeded random problems shared by the weight-quantization tests.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/tensor.h"

namespace tquant::wq::testdata {

inline Tensor random_matrix(int64_t R, int64_t C, std::mt19937& rng, float sd = 1.f) {
  std::normal_distribution<float> nd(0.f, sd);
  Tensor t({R, C});
  for (int64_t i = 0; i < R * C; ++i) t[i] = nd(rng);
  return t;
}

// H = (2/N) XᵀX + 1% of the mean diagonal, X = Z A with A = I + noise_sd·noise and per-column
// magnitudes 10^u, u uniform in ±spread: correlated and badly scaled, like transformer inputs.
inline Tensor correlated_hessian(int64_t C, std::mt19937& rng, int64_t N, float noise_sd, float spread) {
  const Tensor Z = random_matrix(N, C, rng);
  Tensor A = random_matrix(C, C, rng, noise_sd);
  std::uniform_real_distribution<float> ud(-spread, spread);
  std::vector<float> mag(static_cast<size_t>(C));
  for (auto& m : mag) m = std::pow(10.f, ud(rng));
  for (int64_t i = 0; i < C; ++i) A[i * C + i] += 1.f;
  std::vector<double> X(static_cast<size_t>(N * C));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < C; ++j) {
      double s = 0;
      for (int64_t k = 0; k < C; ++k) s += static_cast<double>(Z[n * C + k]) * A[k * C + j];
      X[n * C + j] = s * mag[j];
    }
  Tensor H({C, C});
  double mean_diag = 0;
  for (int64_t i = 0; i < C; ++i)
    for (int64_t j = 0; j < C; ++j) {
      double s = 0;
      for (int64_t n = 0; n < N; ++n) s += X[n * C + i] * X[n * C + j];
      H[i * C + j] = static_cast<float>(2.0 * s / N);
      if (i == j) mean_diag += 2.0 * s / N;
    }
  for (int64_t i = 0; i < C; ++i) H[i * C + i] += static_cast<float>(0.01 * mean_diag / C);
  return H;
}

}  // namespace tquant::wq::testdata
