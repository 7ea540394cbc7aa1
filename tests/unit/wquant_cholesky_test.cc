// The blocked Cholesky and triangular inverse behind GPTQ: checked in double against their
// defining identities, block sizes that leave partial tiles, thread-count independence and the
// failing-pivot report.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <vector>

#include "expect_error.h"
#include "wquant/cholesky.h"

namespace tquant::wq {
namespace {

// A = B Bᵀ / n + 0.1 I: symmetric positive definite, moderately conditioned.
std::vector<float> random_spd(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<double> B(static_cast<size_t>(n * n));
  for (double& b : B) b = nd(rng);
  std::vector<float> A(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = i == j ? 0.1 : 0.0;
      for (int64_t k = 0; k < n; ++k) s += B[i * n + k] * B[j * n + k] / static_cast<double>(n);
      A[i * n + j] = static_cast<float>(s);
    }
  return A;
}

TEST(WquantCholesky, FactorAndInverseSatisfyTheirIdentities) {
  for (int64_t n : {1, 7, 150})
    for (int64_t block : {1, 16, 64, 256}) {
      SCOPED_TRACE(::testing::Message() << "n " << n << ", block " << block);
      const std::vector<float> A = random_spd(n, static_cast<unsigned>(n));
      std::vector<float> a = A;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = i + 1; j < n; ++j) a[i * n + j] = 99.f;  // the upper half must stay untouched
      ASSERT_EQ(cholesky_lower(a.data(), n, block), 0);
      double worst = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
          if (j > i) {
            ASSERT_EQ(a[i * n + j], 99.f);
            continue;
          }
          double s = 0;  // (L Lᵀ)_ij
          for (int64_t k = 0; k <= j; ++k) s += static_cast<double>(a[i * n + k]) * a[j * n + k];
          worst = std::max(worst, std::abs(s - A[i * n + j]));
        }
      EXPECT_LT(worst, 1e-4);
      for (int64_t i = 0; i < n; ++i) EXPECT_GT(a[i * n + i], 0.f);

      std::vector<float> x(static_cast<size_t>(n * n), 5.f);
      invert_lower(a.data(), n, x.data(), block);
      worst = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
          if (j > i) {
            ASSERT_EQ(x[i * n + j], 0.f);
            continue;
          }
          double s = 0;  // (L⁻¹ L)_ij over the lower triangles
          for (int64_t k = j; k <= i; ++k) s += static_cast<double>(x[i * n + k]) * a[k * n + j];
          worst = std::max(worst, std::abs(s - (i == j ? 1.0 : 0.0)));
        }
      EXPECT_LT(worst, 1e-3);
    }
}

TEST(WquantCholesky, SameBitsForAnyThreadCount) {
  const int64_t n = 300;
  const std::vector<float> A = random_spd(n, 3);
  const int saved = omp_get_max_threads();
  std::vector<std::vector<float>> L, X;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    std::vector<float> a = A, x(static_cast<size_t>(n * n));
    ASSERT_EQ(cholesky_lower(a.data(), n, 32), 0);
    invert_lower(a.data(), n, x.data(), 48);
    L.push_back(a);
    X.push_back(x);
  }
  omp_set_num_threads(saved);
  for (size_t t = 1; t < L.size(); ++t) {
    EXPECT_EQ(L[t], L[0]) << t;
    EXPECT_EQ(X[t], X[0]) << t;
  }
}

TEST(WquantCholesky, ReportsTheFirstNonPositivePivot) {
  // Diagonal, with entry 37 negative: pivot 38 (1-based) fails, in the third block of 16.
  const int64_t n = 60;
  std::vector<float> a(static_cast<size_t>(n * n), 0.f);
  for (int64_t i = 0; i < n; ++i) a[i * n + i] = i == 37 ? -1.f : 2.f;
  EXPECT_EQ(cholesky_lower(a.data(), n, 16), 38);
  testing::expect_error([&] { cholesky_lower(a.data(), n, 0); }, {"cholesky_lower", "block size 0"});
}

}  // namespace
}  // namespace tquant::wq
