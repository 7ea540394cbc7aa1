// The W8A8 integer GEMM (kernels/int8_gemm.h): a hand-computed case, every SIMD level bit-identical
// to the scalar reference on random ragged shapes with per-tensor, per-token and per-embedding-group
// (PEG) scales, the reference against the closed form in double, and bad input.
#include "kernels/int8_gemm.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>

#include "expect_error.h"
#include "kernels/cpu_features.h"

namespace tquant {
namespace {


// Activation codes [m, k] in the original column order, scattered into the weight's layout.
Int8Activations activations(const Int8Weight& w, const std::vector<uint8_t>& codes, int64_t m, bool per_row,
                            std::vector<float> scale, std::vector<int32_t> offset) {
  Int8Activations a;
  a.m = m;
  a.kp = w.kp;
  a.per_row = per_row;
  a.codes.assign(static_cast<size_t>(m * w.kp), 0);
  for (int64_t t = 0; t < m; ++t)
    for (int64_t j = 0; j < w.kp; ++j)
      if (w.column[j] >= 0) a.codes[t * w.kp + j] = codes[t * w.k + w.column[j]];
  a.scale = std::move(scale);
  a.offset = std::move(offset);
  return a;
}

std::vector<float> run_at(SimdLevel level, const Int8Activations& a, const Int8Weight& w) {
  ScopedSimdLevel force(level);
  std::vector<float> y(static_cast<size_t>(a.m * w.n), NAN);
  int8_gemm(a, w, y.data());
  return y;
}

TEST(Int8Gemm, HandComputedPerTensorCase) {
  // W = [[1, -2, 3], [-128, 127, 0]], s_w = [0.5, 0.25]; a = [[10, 0, 255]], s = 0.1, o = 5.
  // Row 0: Σ (a − 5)·w = 5·1 + (−5)(−2) + 250·3 = 765 -> 0.5 · 0.1 · 765 = 38.25
  // Row 1: 5·(−128) + (−5)·127 + 0 = −1275 -> 0.25 · 0.1 · (−1275) = −31.875
  const std::vector<int8_t> codes = {1, -2, 3, -128, 127, 0};
  const Int8Weight w = make_int8_weight(codes, 2, 3, std::vector<float>{0.5f, 0.25f}, {}, "test");
  EXPECT_EQ(w.kp, 16);
  EXPECT_EQ(w.row_sum[0], 2);
  EXPECT_EQ(w.row_sum[1], -1);
  const Int8Activations a = activations(w, {10, 0, 255}, 1, false, {0.1f}, {5});
  for (SimdLevel level : available_simd_levels()) {
    const std::vector<float> y = run_at(level, a, w);
    EXPECT_FLOAT_EQ(y[0], 38.25f) << simd_level_name(level);
    EXPECT_FLOAT_EQ(y[1], -31.875f) << simd_level_name(level);
  }
}

// PEG: column c belongs to group g(c); the weight stores the groups contiguously. Check the
// gather and the per-group row sums on a small case.
TEST(Int8Gemm, PegGroupsAreGatheredContiguously) {
  const std::vector<int8_t> codes = {1, 2, 3, 4, 5};
  const std::vector<int32_t> groups = {1, 0, 1, 2, 0};
  const Int8Weight w = make_int8_weight(codes, 1, 5, std::vector<float>{1.f}, groups, "test");
  ASSERT_EQ(w.groups(), 3);
  EXPECT_EQ(w.group_begin, (std::vector<int64_t>{0, 16, 32, 48}));
  EXPECT_EQ(w.column[0], 1);
  EXPECT_EQ(w.column[1], 4);
  EXPECT_EQ(w.column[2], -1);
  EXPECT_EQ(w.column[16], 0);
  EXPECT_EQ(w.column[17], 2);
  EXPECT_EQ(w.column[32], 3);
  EXPECT_EQ(w.row_sum[0 * w.np], 2 + 5);
  EXPECT_EQ(w.row_sum[1 * w.np], 1 + 3);
  EXPECT_EQ(w.row_sum[2 * w.np], 4);
}

TEST(Int8Gemm, EveryLevelIsBitIdenticalAndMatchesTheClosedForm) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
  std::uniform_real_distribution<float> sd(0.001f, 0.05f);
  struct Shape {
    int64_t m, n, k, groups;
    bool per_row;
  };
  const Shape shapes[] = {{1, 1, 1, 1, false},   {3, 17, 33, 1, false}, {9, 40, 100, 1, true},  {13, 70, 130, 6, false},
                          {8, 32, 64, 3, false}, {5, 33, 200, 4, false}, {17, 50, 31, 1, true}, {2, 100, 257, 6, false}};
  for (const Shape& s : shapes) {
    std::vector<int8_t> wc(static_cast<size_t>(s.n * s.k));
    for (auto& v : wc) v = static_cast<int8_t>(s8(rng));
    std::vector<float> sw(s.n);
    for (auto& v : sw) v = sd(rng);
    std::vector<int32_t> group;
    if (s.groups > 1) {
      for (int64_t c = 0; c < s.k; ++c) group.push_back(static_cast<int32_t>(c % s.groups));
      std::shuffle(group.begin(), group.end(), rng);
    }
    const Int8Weight w = make_int8_weight(wc, s.n, s.k, sw, group, "test");
    std::vector<uint8_t> ac(static_cast<size_t>(s.m * s.k));
    for (auto& v : ac) v = static_cast<uint8_t>(u8(rng));
    const int64_t P = (s.per_row ? s.m : 1) * s.groups;
    std::vector<float> scale(P);
    std::vector<int32_t> offset(P);
    for (int64_t i = 0; i < P; ++i) {
      scale[i] = sd(rng);
      offset[i] = u8(rng);
    }
    const Int8Activations a = activations(w, ac, s.m, s.per_row, scale, offset);
    const std::vector<float> ref = run_at(SimdLevel::Scalar, a, w);
    for (int64_t t = 0; t < s.m; ++t)
      for (int64_t r = 0; r < s.n; ++r) {
        double exact = 0, magnitude = 0;
        for (int64_t c = 0; c < s.k; ++c) {
          const int64_t g = s.groups > 1 ? group[c] : 0, p = (s.per_row ? t * s.groups : 0) + g;
          const double term = static_cast<double>(sw[r]) * scale[p] * (ac[t * s.k + c] - offset[p]) * wc[r * s.k + c];
          exact += term;
          magnitude += std::fabs(term);
        }
        // Integer sums are exact; only the per-group rounding of the epilogue remains.
        ASSERT_NEAR(ref[t * s.n + r], exact, 4e-7 * (s.groups + 2) * magnitude + 1e-30)
            << "m " << s.m << " n " << s.n << " k " << s.k << " groups " << s.groups;
      }
    for (SimdLevel level : available_simd_levels()) {
      const std::vector<float> y = run_at(level, a, w);
      ASSERT_EQ(0, std::memcmp(y.data(), ref.data(), y.size() * sizeof(float)))
          << simd_level_name(level) << " differs from the scalar reference for m " << s.m << " n " << s.n << " k "
          << s.k << " groups " << s.groups;
    }
  }
}

TEST(Int8Gemm, ThreadCountDoesNotChangeResults) {
  std::mt19937 rng(8);
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
  std::vector<int8_t> wc(200 * 96);
  for (auto& v : wc) v = static_cast<int8_t>(s8(rng));
  const Int8Weight w = make_int8_weight(wc, 200, 96, std::vector<float>(200, 0.01f), {}, "test");
  std::vector<uint8_t> ac(11 * 96);
  for (auto& v : ac) v = static_cast<uint8_t>(u8(rng));
  const Int8Activations a = activations(w, ac, 11, false, {0.02f}, {128});
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<float> one = run_at(detected_simd_level(), a, w);
  omp_set_num_threads(2);
  const std::vector<float> two = run_at(detected_simd_level(), a, w);
  omp_set_num_threads(saved);
  EXPECT_EQ(0, std::memcmp(one.data(), two.data(), one.size() * sizeof(float)));
}

TEST(Int8Gemm, BadInputIsRefusedWithItsName) {
  const std::vector<int8_t> codes(6, 1);
  testing::expect_error([&] { make_int8_weight(codes, 2, 3, std::vector<float>{1.f, -1.f}, {}, "L"); },
                        {"L", "row 1", "-1"});
  testing::expect_error([&] { make_int8_weight(codes, 2, 3, std::vector<float>{1.f, 1.f}, std::vector<int32_t>{0, 2, 0}, "L"); },
                        {"L", "group 1", "no columns"});
  testing::expect_error([&] { make_int8_weight(codes, 2, 3, std::vector<float>{1.f, 1.f}, std::vector<int32_t>{0, 1}, "L"); },
                        {"L", "2 columns", "3"});
  const Int8Weight w = make_int8_weight(codes, 2, 3, std::vector<float>{1.f, 1.f}, {}, "L");
  Int8Activations a;
  a.m = 1;
  a.kp = 32;
  a.codes.assign(32, 0);
  a.scale = {1.f};
  a.offset = {0};
  std::vector<float> y(2);
  testing::expect_error([&] { int8_gemm(a, w, y.data()); }, {"32 columns", "16"});
}

}  // namespace
}  // namespace tquant
