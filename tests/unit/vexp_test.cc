// The vectorized exponential and its reductions (kernels/vexp.h): every SIMD level against the
// scalar reference bit for bit (a dense sweep of [−104, 89], the floats around the thresholds,
// random values and bit patterns, specials, every tail length); the reference against exp in
// double; the sums against their definition written out here; the softmaxes and log-sum-exp
// built on them.
#include "kernels/vexp.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/ops.h"

namespace tquant {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
// The thresholds of the definition (vexp.h).
constexpr float kHi = 0x1.62e42ep+6f, kLo = -0x1.5d589ep+6f;

bool same_bits(float a, float b) { return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b); }
bool same_bits(double a, double b) { return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b); }

// The floats k steps either side of v, v included.
void add_neighbours(std::vector<float>& out, float v, int k) {
  float lo = v, hi = v;
  out.push_back(v);
  for (int i = 0; i < k; ++i) {
    lo = std::nextafter(lo, -kInf);
    hi = std::nextafter(hi, kInf);
    out.push_back(lo);
    out.push_back(hi);
  }
}

std::vector<float> sweep_values() {
  std::vector<float> v;
  for (double x = -104.0; x <= 89.0; x += 1.0 / 4096) v.push_back(static_cast<float>(x));
  for (float t : {kHi, kLo, 0.f, -0.f, 0.5f * std::log(2.f), -0.5f * std::log(2.f), 1.f, -1.f})
    add_neighbours(v, t, 2000);
  // Where n = round(x·log2e) changes: r at ±ln2/2, its largest.
  for (int n = -126; n <= 128; ++n) add_neighbours(v, static_cast<float>((n + 0.5) * std::log(2.0)), 20);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> wide(-120.f, 100.f);
  std::normal_distribution<float> normal(0.f, 10.f);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 100000; ++i) {
    v.push_back(wide(rng));
    v.push_back(normal(rng));
    v.push_back(std::bit_cast<float>(bits(rng)));  // any float: huge, tiny, subnormal, NaN
  }
  for (float s : {kInf, -kInf, std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                  std::bit_cast<float>(0x7fc12345u), std::numeric_limits<float>::signaling_NaN(), FLT_MAX, -FLT_MAX,
                  FLT_MIN, -FLT_MIN, std::numeric_limits<float>::denorm_min(),
                  -std::numeric_limits<float>::denorm_min(),
                  1e-30f, -1e-30f, 1e30f, -1e30f})
    v.push_back(s);
  return v;
}

std::vector<float> exp_at(SimdLevel level, const std::vector<float>& x) {
  ScopedSimdLevel force(level);
  std::vector<float> y(x.size(), 42.f);
  exp_rows(x.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

// Every output bit equals the reference's, except that the row kernels return a signalling NaN
// quieted (they compute x − shift first): there the scalar level is the reference.
TEST(Vexp, EveryLevelEqualsTheScalarReferenceBitForBit) {
  const std::vector<float> x = sweep_values();
  const std::vector<float> scalar = exp_at(SimdLevel::Scalar, x);
  for (size_t i = 0; i < x.size(); ++i) {
    const float ref = exp_ref(x[i]);
    if (std::isnan(x[i]))
      ASSERT_TRUE(std::isnan(ref) && std::isnan(scalar[i])) << std::hexfloat << x[i];
    else
      ASSERT_TRUE(same_bits(scalar[i], ref)) << std::hexfloat << x[i] << ": " << scalar[i] << " vs " << ref;
  }
  for (SimdLevel level : available_simd_levels()) {
    const std::vector<float> y = exp_at(level, x);
    int64_t mismatches = 0;
    for (size_t i = 0; i < x.size(); ++i)
      if (!same_bits(y[i], scalar[i]) && mismatches++ < 5)
        ADD_FAILURE() << simd_level_name(level) << ": exp(" << std::hexfloat << x[i] << ") = " << y[i]
                      << ", the reference gives " << scalar[i];
    EXPECT_EQ(mismatches, 0) << simd_level_name(level) << " of " << x.size();
  }
}

// Over every float of [kLo, kHi] (a one-off exhaustive run, 2.24e9 values) the error is at most
// 0.89 ulp of the result and 7.63e-8 relative; the sweep here must stay under both rounded up.
TEST(Vexp, WithinOneUlpOfExpInDoubleOverTheNormalRange) {
  double worst_rel = 0, worst_ulp = 0;
  float worst_x = 0;
  int64_t checked = 0;
  for (float x : sweep_values()) {
    if (!(x >= kLo && x <= kHi)) continue;
    const double want = std::exp(static_cast<double>(x));
    const double err = std::abs(exp_ref(x) - want);
    int e;
    std::frexp(want, &e);  // want in [2^(e-1), 2^e): a float ulp there is 2^(e-24)
    worst_ulp = std::max(worst_ulp, err / std::ldexp(1.0, e - 24));
    if (err / want > worst_rel) worst_rel = err / want, worst_x = x;
    ++checked;
  }
  EXPECT_GT(checked, 700000);
  EXPECT_LT(worst_rel, 8e-8) << "at x = " << std::hexfloat << worst_x;
  EXPECT_LT(worst_ulp, 1.0);
  std::printf("max error %.3g relative, %.3f ulp over %lld values\n", worst_rel, worst_ulp,
              static_cast<long long>(checked));
}

TEST(Vexp, SpecialValuesAndThresholds) {
  EXPECT_EQ(exp_ref(0.f), 1.f);
  EXPECT_EQ(exp_ref(-0.f), 1.f);
  EXPECT_EQ(exp_ref(kInf), kInf);
  EXPECT_TRUE(same_bits(exp_ref(-kInf), 0.f));
  EXPECT_TRUE(std::isnan(exp_ref(std::numeric_limits<float>::quiet_NaN())));
  const float nan_payload = std::bit_cast<float>(0x7fc12345u);
  EXPECT_TRUE(same_bits(exp_ref(nan_payload), nan_payload));
  // The largest finite result and the first overflow, as a correctly rounded expf has them.
  EXPECT_TRUE(std::isfinite(exp_ref(kHi)));
  EXPECT_GT(exp_ref(kHi), 0.999 * FLT_MAX);
  EXPECT_EQ(exp_ref(std::nextafter(kHi, kInf)), kInf);
  EXPECT_GT(std::exp(static_cast<double>(std::nextafter(kHi, kInf))), FLT_MAX);
  EXPECT_EQ(exp_ref(FLT_MAX), kInf);
  // The smallest normal result; below it, zero instead of a subnormal.
  EXPECT_GE(exp_ref(kLo), FLT_MIN);
  EXPECT_LT(std::exp(static_cast<double>(std::nextafter(kLo, -kInf))), FLT_MIN);
  EXPECT_TRUE(same_bits(exp_ref(std::nextafter(kLo, -kInf)), 0.f));
  EXPECT_TRUE(same_bits(exp_ref(-FLT_MAX), 0.f));
  EXPECT_TRUE(same_bits(exp_ref(-104.f), 0.f));
  // Powers of e at integers stay within the bound, and exp(1) is e rounded or a neighbour.
  EXPECT_LE(std::abs(exp_ref(1.f) - static_cast<float>(M_E)), 2.4e-7f);
}

// The definition of the sums, written out: element i into partial sum i % 16, then the tree.
double defined_sum(const float* x, int64_t n, float shift) {
  double acc[16] = {};
  for (int64_t i = 0; i < n; ++i) acc[i % 16] += exp_ref(x[i] - shift);
  for (int h = 8; h >= 1; h /= 2)
    for (int i = 0; i < h; ++i) acc[i] += acc[i + h];
  return acc[0];
}

std::vector<int64_t> test_lengths() {
  std::vector<int64_t> n;
  for (int64_t i = 0; i <= 70; ++i) n.push_back(i);
  for (int64_t i : {127, 128, 129, 511, 512, 513, 2047, 2048, 2049}) n.push_back(i);
  return n;
}

TEST(Vexp, SumsFollowTheirDefinitionAtEveryLevelAndLength) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.f, 4.f);
  for (int64_t n : test_lengths()) {
    // An offset start and a guard after the end: tails must neither read nor write past n.
    std::vector<float> x(n + 3);
    for (float& v : x) v = dist(rng);
    const float* in = x.data() + 1;
    const float shift = n > 0 ? *std::max_element(in, in + n) : 0.f;
    const double want = defined_sum(in, n, shift);
    for (SimdLevel level : available_simd_levels()) {
      ScopedSimdLevel force(level);
      EXPECT_TRUE(same_bits(sum_exp_sub(in, n, shift), want)) << simd_level_name(level) << " n = " << n;
      std::vector<float> y = x;
      const double s = exp_sub_sum(y.data() + 1, n, shift);
      EXPECT_TRUE(same_bits(s, want)) << simd_level_name(level) << " n = " << n;
      EXPECT_TRUE(same_bits(y[0], x[0]) && same_bits(y[n + 1], x[n + 1]) && same_bits(y[n + 2], x[n + 2]))
          << simd_level_name(level) << " wrote outside n = " << n;
      for (int64_t i = 0; i < n; ++i)
        ASSERT_TRUE(same_bits(y[i + 1], exp_ref(in[i] - shift)))
            << simd_level_name(level) << " n = " << n << " i = " << i;
    }
  }
}

TEST(Vexp, MaximaAgreeAtEveryLevelAndLength) {
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.f, 3.f);
  for (int64_t n : test_lengths()) {
    std::vector<float> x(n + 2);
    for (float& v : x) v = dist(rng);
    x[n + 1] = 1e30f;  // past the end: must not count
    const float* in = x.data() + 1;
    const float want = n > 0 ? *std::max_element(in, in + n) : -kInf;
    std::vector<float> scaled(in, in + n);
    for (float& v : scaled) v *= 0.125f;
    const float want_scaled = n > 0 ? *std::max_element(scaled.begin(), scaled.end()) : -kInf;
    for (SimdLevel level : available_simd_levels()) {
      ScopedSimdLevel force(level);
      EXPECT_EQ(max_value(in, n), want) << simd_level_name(level) << " n = " << n;
      std::vector<float> y = x;
      EXPECT_EQ(scale_max(y.data() + 1, n, 0.125f), want_scaled) << simd_level_name(level) << " n = " << n;
      for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(same_bits(y[i + 1], scaled[i]));
      EXPECT_TRUE(same_bits(y[0], x[0]) && same_bits(y[n + 1], x[n + 1])) << "wrote outside n = " << n;
    }
  }
}

TEST(Vexp, LogSumExpAgainstDouble) {
  std::mt19937 rng(9);
  std::normal_distribution<float> dist(0.f, 5.f);
  for (int64_t n : {1, 7, 100, 2048}) {
    std::vector<float> x(n);
    for (float& v : x) v = dist(rng) + 30.f;
    double m = -INFINITY, sum = 0;
    for (float v : x) m = std::max<double>(m, v);
    for (float v : x) sum += std::exp(v - m);
    const double want = m + std::log(sum);
    for (SimdLevel level : available_simd_levels()) {
      ScopedSimdLevel force(level);
      EXPECT_NEAR(log_sum_exp(x.data(), n), want, 2e-7 * std::abs(want) + 3e-7)
          << simd_level_name(level) << " n = " << n;
    }
  }
  const float all_masked[] = {-kInf, -kInf}, with_inf[] = {1.f, kInf}, with_nan[] = {1.f, NAN, 2.f};
  EXPECT_EQ(log_sum_exp(all_masked, 2), -INFINITY);
  EXPECT_EQ(log_sum_exp(all_masked, 0), -INFINITY);
  EXPECT_EQ(log_sum_exp(with_inf, 2), INFINITY);
  EXPECT_TRUE(std::isnan(log_sum_exp(with_nan, 3)));
  const float one[] = {-3.5f};
  EXPECT_EQ(log_sum_exp(one, 1), -3.5);
}

// Causal attention rows of every visible length, as the forward pass calls softmax_prefix.
std::vector<float> attention_rows(int64_t T, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.f, 6.f);
  std::vector<float> s(T * T);
  for (float& v : s) v = dist(rng);
  return s;
}

TEST(Vexp, SoftmaxPrefixIsBitIdenticalAcrossLevelsAndCloseToDouble) {
  const int64_t T = 77;
  const float scale = 0.125f;
  std::mt19937 rng(1);
  const std::vector<float> s = attention_rows(T, rng);
  std::vector<float> ref;
  for (SimdLevel level : available_simd_levels()) {
    ScopedSimdLevel force(level);
    std::vector<float> p = s;
    for (int64_t i = 0; i < T; ++i) softmax_prefix(p.data() + i * T, T, i + 1, scale);
    if (ref.empty()) {
      ref = p;
      continue;
    }
    for (size_t j = 0; j < p.size(); ++j) ASSERT_TRUE(same_bits(p[j], ref[j])) << simd_level_name(level) << " at " << j;
  }
  for (int64_t i = 0; i < T; ++i) {
    const float* row = s.data() + i * T;
    double m = -INFINITY, sum = 0;
    for (int64_t j = 0; j <= i; ++j) m = std::max<double>(m, row[j] * scale);
    for (int64_t j = 0; j <= i; ++j) sum += std::exp(static_cast<double>(row[j] * scale) - m);
    for (int64_t j = 0; j < T; ++j) {
      const double want = j <= i ? std::exp(static_cast<double>(row[j] * scale) - m) / sum : 0.0;
      EXPECT_NEAR(ref[i * T + j], want, 3e-7 * want) << "row " << i << " col " << j;
    }
  }
}

TEST(Vexp, SoftmaxRowsIsBitIdenticalAcrossLevelsAndThreadCounts) {
  const int64_t rows = 40, d = 37;
  std::mt19937 rng(2);
  std::vector<float> x = attention_rows(rows, rng);
  x.resize(rows * d);
  for (int64_t j = 0; j < d; ++j) x[5 * d + j] = -kInf;  // a fully masked row becomes zeros
  x[6 * d + 3] = -kInf;                                  // a masked key gets probability 0
  std::vector<float> ref;
  const int saved = omp_get_max_threads();
  for (SimdLevel level : available_simd_levels())
    for (int threads : {1, 2}) {
      ScopedSimdLevel force(level);
      omp_set_num_threads(threads);
      std::vector<float> p = x;
      softmax_rows(p.data(), rows, d);
      if (ref.empty()) {
        ref = p;
        continue;
      }
      for (size_t j = 0; j < p.size(); ++j)
        ASSERT_TRUE(same_bits(p[j], ref[j])) << simd_level_name(level) << " at " << j;
    }
  omp_set_num_threads(saved);
  for (int64_t j = 0; j < d; ++j) EXPECT_TRUE(same_bits(ref[5 * d + j], 0.f));
  EXPECT_TRUE(same_bits(ref[6 * d + 3], 0.f));
  for (int64_t r = 0; r < rows; ++r) {
    if (r == 5) continue;
    double sum = 0;
    for (int64_t j = 0; j < d; ++j) sum += ref[r * d + j];
    EXPECT_NEAR(sum, 1.0, 2e-6) << "row " << r;
  }
}

}  // namespace
}  // namespace tquant
