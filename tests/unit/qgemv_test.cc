// Packed low-bit GEMV/GEMM (kernels/qgemv.h): the decode of every format, bit for bit, against the
// dequantizers the rest of tquant uses; every SIMD level against the scalar reference on random,
// ragged shapes; the scalar reference against a double-precision sum; thread-count invariance.
#include "kernels/qgemv.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>

#include "expect_error.h"
#include "packed_test_matrices.h"
#include "wquant/weight_quant.h"

namespace tquant {
namespace {

using testing::random_matrix;
using testing::random_x;

std::vector<float> run_at(SimdLevel level, const PackedMatrix& w, const std::vector<float>& x, int64_t tokens) {
  ScopedSimdLevel force(level);
  std::vector<float> y(static_cast<size_t>(tokens * w.rows), NAN);
  packed_matmul(w, x.data(), tokens, nullptr, y.data());
  return y;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

struct Case {
  QFormat format;
  int bits;
  int64_t group;  // Packed only; 0 = one group per row
  int64_t cols;
};

const Case kCases[] = {
    {QFormat::Q4_0, 4, 32, 96},   {QFormat::Q4_1, 4, 32, 64},   {QFormat::Q8_0, 8, 32, 160},
    {QFormat::Packed, 4, 32, 128}, {QFormat::Packed, 4, 0, 100}, {QFormat::Packed, 3, 64, 128},
    {QFormat::Packed, 3, 0, 77},  {QFormat::Packed, 2, 32, 96},  {QFormat::Packed, 2, 0, 45},
    {QFormat::Packed, 8, 0, 70},  {QFormat::Packed, 8, 32, 64},  {QFormat::Packed, 5, 0, 40},
    {QFormat::Packed, 4, 16, 48},  // groups of 16: the SIMD levels fall back to the scalar kernel
};

// ggml blocks decode exactly as gguf::dequantize_row (what `tquant eval` of a GGUF used so far).
TEST(PackedMatrix, GgmlDecodeMatchesGgufDequantizer) {
  std::mt19937 rng(1);
  for (QFormat f : {QFormat::Q4_0, QFormat::Q4_1, QFormat::Q8_0}) {
    const PackedMatrix w = random_matrix(f, f == QFormat::Q8_0 ? 8 : 4, 32, 3, 96, rng);
    const gguf::TensorType t = f == QFormat::Q4_0 ? gguf::TensorType::Q4_0
                               : f == QFormat::Q4_1 ? gguf::TensorType::Q4_1
                                                    : gguf::TensorType::Q8_0;
    std::vector<float> ref(96);
    for (int64_t r = 0; r < 3; ++r) {
      gguf::dequantize_row(t, w.row(r), 96, ref.data());
      for (int64_t c = 0; c < 96; ++c) ASSERT_TRUE(same_bits(w.weight(r, c), ref[c])) << qformat_name(f) << " " << r << "," << c;
    }
  }
}

// tquant codes decode exactly as wq::QuantizedWeight::dequantize (the checkpoint loader's).
TEST(PackedMatrix, PackedDecodeMatchesCheckpointDequantizer) {
  std::mt19937 rng(2);
  for (const int bits : {2, 3, 4, 5, 8})
    for (const int64_t group : {int64_t{0}, int64_t{16}}) {
      wq::QuantizedWeight q;
      q.grid.format.bits = bits;
      q.grid.format.group = group;
      q.grid.rows = 5;
      q.grid.cols = 48;
      const int64_t G = 5 * (group == 0 ? 1 : 48 / group);
      std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
      for (int64_t i = 0; i < G; ++i) {
        q.grid.scale.push_back(0.01f + 0.003f * static_cast<float>(i));
        q.grid.zero.push_back(static_cast<float>(code(rng)));
      }
      for (int i = 0; i < 5 * 48; ++i) q.codes.push_back(static_cast<uint8_t>(code(rng)));
      const Tensor ref = q.dequantize();
      const PackedMatrix w = PackedMatrix::from_codes(bits, group, 5, 48, q.codes, q.grid.scale, q.grid.zero, "test");
      const Tensor got = w.dequantize();
      for (int64_t i = 0; i < ref.numel(); ++i) ASSERT_TRUE(same_bits(got[i], ref[i])) << bits << "-bit, element " << i;
    }
}

// With x = the unit vectors, every product is one weight: each level must reproduce the
// dequantized matrix bit for bit, which pins the decode of every lane, nibble order included.
TEST(PackedMatmul, UnitVectorsGiveTheExactWeightsAtEveryLevel) {
  std::mt19937 rng(3);
  for (const Case& c : kCases) {
    const PackedMatrix w = random_matrix(c.format, c.bits, c.group, 9, c.cols, rng);
    std::vector<float> eye(static_cast<size_t>(c.cols * c.cols), 0.f);
    for (int64_t i = 0; i < c.cols; ++i) eye[i * c.cols + i] = 1.f;
    const Tensor ref = w.dequantize();
    for (SimdLevel level : available_simd_levels()) {
      const std::vector<float> y = run_at(level, w, eye, c.cols);  // y[t, r] = W[r, t]
      for (int64_t r = 0; r < 9; ++r)
        for (int64_t t = 0; t < c.cols; ++t)
          ASSERT_TRUE(same_bits(y[t * 9 + r], ref[r * c.cols + t]))
              << qformat_name(c.format) << c.bits << " g" << c.group << " at " << simd_level_name(level) << ": W[" << r
              << "," << t << "] = " << ref[r * c.cols + t] << ", got " << y[t * 9 + r];
    }
  }
}

// Random shapes with ragged rows (not a multiple of 4), tokens (not a multiple of 4 or 2) and,
// for tquant codes, columns: every level agrees with the scalar reference within the bound of a
// reordered float sum, and the reference agrees with a double-precision sum.
TEST(PackedMatmul, EveryLevelMatchesTheReferenceOnRaggedShapes) {
  std::mt19937 rng(4);
  for (const Case& c : kCases)
    for (const int64_t rows : {int64_t{1}, int64_t{7}, int64_t{37}})
      for (const int64_t tokens : {int64_t{1}, int64_t{3}, int64_t{6}}) {
        const PackedMatrix w = random_matrix(c.format, c.bits, c.group, rows, c.cols, rng);
        const std::vector<float> x = random_x(tokens * c.cols, rng);
        const Tensor dq = w.dequantize();
        const std::vector<float> ref = run_at(SimdLevel::Scalar, w, x, tokens);
        for (int64_t t = 0; t < tokens; ++t)
          for (int64_t r = 0; r < rows; ++r) {
            double exact = 0, magnitude = 0;
            for (int64_t k = 0; k < c.cols; ++k) {
              exact += static_cast<double>(dq[r * c.cols + k]) * x[t * c.cols + k];
              magnitude += std::fabs(static_cast<double>(dq[r * c.cols + k]) * x[t * c.cols + k]);
            }
            // |error of a float sum of n products| <= n·u·Σ|products| (u = 2^-24), for any order.
            const double bound = static_cast<double>(c.cols) * 0x1p-24 * magnitude + 1e-30;
            ASSERT_NEAR(ref[t * rows + r], exact, bound) << qformat_name(c.format) << " scalar reference";
            for (SimdLevel level : available_simd_levels()) {
              if (level == SimdLevel::Scalar) continue;
              const std::vector<float> y = run_at(level, w, x, tokens);
              ASSERT_NEAR(y[t * rows + r], exact, bound)
                  << qformat_name(c.format) << c.bits << " g" << c.group << " [" << rows << "x" << c.cols << "] x "
                  << tokens << " tokens at " << simd_level_name(level) << ", row " << r << ", token " << t;
            }
          }
      }
}

// A token's result does not depend on how many tokens share the call (the kernels block tokens
// by 4 or 2) nor on the thread count (rows are split, never a sum).
TEST(PackedMatmul, TokenBlockingAndThreadsDoNotChangeResults) {
  std::mt19937 rng(5);
  const PackedMatrix w = random_matrix(QFormat::Packed, 4, 32, 70, 256, rng);
  const std::vector<float> x = random_x(7 * 256, rng);
  for (SimdLevel level : available_simd_levels()) {
    const std::vector<float> all = run_at(level, w, x, 7);
    for (int64_t t = 0; t < 7; ++t) {
      const std::vector<float> one(x.begin() + t * 256, x.begin() + (t + 1) * 256);
      const std::vector<float> y = run_at(level, w, one, 1);
      for (int64_t r = 0; r < 70; ++r) ASSERT_TRUE(same_bits(y[r], all[t * 70 + r])) << simd_level_name(level);
    }
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const std::vector<float> serial = run_at(level, w, x, 7);
    omp_set_num_threads(2);
    const std::vector<float> parallel = run_at(level, w, x, 7);
    omp_set_num_threads(saved);
    EXPECT_EQ(0, std::memcmp(serial.data(), parallel.data(), serial.size() * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(serial.data(), all.data(), serial.size() * sizeof(float)));
  }
}

TEST(PackedMatmul, AddsTheBias) {
  // Two rows of 32 codes, one group each: W = s·(q − z) with q = 3, z = 1, s = 0.5 -> every weight 1.
  std::vector<uint8_t> codes(64, 3);
  const std::vector<float> scale = {0.5f, 0.5f}, zero = {1.f, 1.f};
  const PackedMatrix w = PackedMatrix::from_codes(4, 0, 2, 32, codes, scale, zero, "test");
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i);  // Σ = 496
  const float bias[2] = {1.f, -2.f};
  for (SimdLevel level : available_simd_levels()) {
    ScopedSimdLevel force(level);
    float y[2];
    packed_matmul(w, x.data(), 1, bias, y);
    EXPECT_EQ(y[0], 497.f);
    EXPECT_EQ(y[1], 494.f);
  }
}

TEST(PackedMatrix, BadInputIsRefusedWithItsName) {
  const std::vector<uint8_t> codes(64, 1);
  testing::expect_error(
      [&] { PackedMatrix::from_codes(4, 0, 2, 32, codes, std::vector<float>{1.f, 0.f}, std::vector<float>{0.f, 0.f}, "L"); },
      {"L", "scale 0", "row 1"});
  testing::expect_error(
      [&] { PackedMatrix::from_codes(4, 0, 2, 32, codes, std::vector<float>{1.f, 1.f}, std::vector<float>{0.5f, 0.f}, "L"); },
      {"L", "zero point 0.5", "row 0"});
  testing::expect_error(
      [&] { PackedMatrix::from_codes(4, 24, 2, 32, codes, std::vector<float>{1.f, 1.f}, std::vector<float>{0.f, 0.f}, "L"); },
      {"L", "group size 24"});
  testing::expect_error([&] { PackedMatrix::from_codes(9, 0, 2, 32, codes, {}, {}, "L"); }, {"L", "9-bit"});
  testing::expect_error([&] { PackedMatrix::from_ggml(QFormat::Q4_0, 2, 48, codes, "T"); }, {"T", "multiple of 32"});
  testing::expect_error([&] { PackedMatrix::from_ggml(QFormat::Q4_0, 2, 32, codes, "T"); }, {"T", "64 bytes", "36"});
}

TEST(CpuFeatures, LevelsAreNamedAndCannotExceedTheCpu) {
  EXPECT_STREQ(simd_level_name(SimdLevel::Scalar), "scalar");
  EXPECT_STREQ(simd_level_name(SimdLevel::AVX2), "avx2");
  EXPECT_STREQ(simd_level_name(SimdLevel::AVX512), "avx512");
  {
    ScopedSimdLevel s(SimdLevel::Scalar);
    EXPECT_EQ(simd_level(), SimdLevel::Scalar);
  }
  if (detected_simd_level() < SimdLevel::AVX512)
    testing::expect_error([] { ScopedSimdLevel s(SimdLevel::AVX512); }, {"avx512", "this CPU offers"});
}

}  // namespace
}  // namespace tquant
