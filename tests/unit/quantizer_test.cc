// The uniform affine quantizer (METHODS.md §1): hand-computed values for each formula and
// granularity, the optimised kernels against the scalar reference bit for bit, identities
// (idempotence, dequantize∘quantize == fake_quantize, error <= s/2 inside the range), and the
// JSON form of QuantParams.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "expect_error.h"
#include "quant/affine.h"
#include "quant/channel_groups.h"
#include "quant/fake_quant.h"
#include "quant/fake_quant_ref.h"
#include "quant/quant_params.h"
#include "quant/quant_params_json.h"

namespace tquant {
namespace {

using testing::expect_error;

QuantParams params(int bits, bool symmetric, Grouping g, std::vector<Range> ranges) {
  return params_from_ranges(bits, symmetric, std::move(g), ranges, "test");
}

std::vector<float> fq(std::vector<float> x, int64_t rows, int64_t cols, const QuantParams& p) {
  fake_quantize(x.data(), rows, cols, p, "test");
  return x;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(Affine, Asymmetric4BitOnMinus1To3) {
  // s = (3 - (-1)) / (2^4 - 1) = 4/15; z = round(1 / (4/15)) = round(3.75) = 4.
  const ScaleZero sz = scale_zero_from_range({-1.f, 3.f}, 4, false, "t");
  EXPECT_FLOAT_EQ(sz.scale, 4.f / 15.f);
  EXPECT_EQ(sz.zero_point, 4.f);
  const QuantParams p = params(4, false, per_tensor(), {{-1.f, 3.f}});
  const float s = 4.f / 15.f;
  // 0.5/s = 1.875 -> 2, q = 6, x̂ = 2s.   -1/s = -3.75 -> -4, q = 0, x̂ = -4s.
  // 3/s = 11.25 -> 11, q = 15, x̂ = 11s.  5/s = 18.75 -> 19, q = 23 -> 15, x̂ = 11s.
  // -2/s = -7.5 -> -8 (half to even), q = -4 -> 0, x̂ = -4s.   0 -> q = z, x̂ = 0 exactly.
  const std::vector<float> out = fq({0.5f, -1.f, 3.f, 5.f, -2.f, 0.f}, 1, 6, p);
  EXPECT_FLOAT_EQ(out[0], 2 * s);
  EXPECT_FLOAT_EQ(out[1], -4 * s);
  EXPECT_FLOAT_EQ(out[2], 11 * s);
  EXPECT_FLOAT_EQ(out[3], 11 * s);
  EXPECT_FLOAT_EQ(out[4], -4 * s);
  EXPECT_EQ(out[5], 0.f);
  std::vector<int32_t> codes(6);
  const std::vector<float> in = {0.5f, -1.f, 3.f, 5.f, -2.f, 0.f};
  quantize(in.data(), 1, 6, p, codes.data(), "t");
  EXPECT_EQ(codes, (std::vector<int32_t>{6, 0, 15, 15, 0, 4}));
}

TEST(Affine, RoundsHalfToEven) {
  // [0, 127.5] at 8 bits: s = 127.5 / 255 = 0.5 exactly, z = 0, so x/s are exact ties.
  // 0.25/s = 0.5 -> 0; 0.75/s = 1.5 -> 2; 1.25/s = 2.5 -> 2; 1.75/s = 3.5 -> 4.
  const QuantParams p = params(8, false, per_tensor(), {{0.f, 127.5f}});
  EXPECT_EQ(p.scale[0], 0.5f);
  EXPECT_EQ(fq({0.25f, 0.75f, 1.25f, 1.75f}, 1, 4, p), (std::vector<float>{0.f, 1.f, 1.f, 2.f}));
}

TEST(Affine, Symmetric8Bit) {
  // absmax 127 -> s = 127 / (2^7 - 1) = 1, z = 0, codes in [-128, 127].
  // 2.5 -> 2 and -3.5 -> -4 (ties to even); 200 -> 127; -200 -> -128 (the extra negative code).
  const QuantParams p = params(8, true, per_tensor(), {{-127.f, 50.f}});
  EXPECT_EQ(p.scale[0], 1.f);
  EXPECT_EQ(p.zero_point[0], 0.f);
  EXPECT_EQ(fq({2.5f, -3.5f, 200.f, -200.f, 0.4f}, 1, 5, p),
            (std::vector<float>{2.f, -4.f, 127.f, -128.f, 0.f}));
  // A range of [-2, 1] at 8 bits: s = 2/127.
  EXPECT_FLOAT_EQ(params(8, true, per_tensor(), {{-2.f, 1.f}}).scale[0], 2.f / 127.f);
}

TEST(Affine, ConstantTensors) {
  // Constant 2: the range is forced to [0, 2], s = 2/255, z = 0, 2 -> code 255 -> 255 s = 2.
  const QuantParams pos = params(8, false, per_tensor(), {{2.f, 2.f}});
  EXPECT_FLOAT_EQ(pos.scale[0], 2.f / 255.f);
  EXPECT_EQ(pos.zero_point[0], 0.f);
  EXPECT_FLOAT_EQ(fq({2.f, 2.f}, 1, 2, pos)[0], 2.f);
  // Constant -3: forced to [-3, 0], s = 3/255, z = round(3 / s) = 255; -3 -> code 0 -> -255 s.
  const QuantParams neg = params(8, false, per_tensor(), {{-3.f, -3.f}});
  EXPECT_EQ(neg.zero_point[0], 255.f);
  EXPECT_FLOAT_EQ(fq({-3.f}, 1, 1, neg)[0], -3.f);
}

TEST(Affine, AllNegativeDataIncludesZero) {
  // [-4, -1] at 4 bits is forced to [-4, 0]: s = 4/15, z = round(4 / s) = 15.
  // -1/s = -3.75 -> -4, q = 11, x̂ = (11 - 15) s = -4s; 0 -> q = 15 -> exactly 0.
  const QuantParams p = params(4, false, per_tensor(), {{-4.f, -1.f}});
  EXPECT_FLOAT_EQ(p.scale[0], 4.f / 15.f);
  EXPECT_EQ(p.zero_point[0], 15.f);
  const std::vector<float> out = fq({-1.f, 0.f, -4.f}, 1, 3, p);
  EXPECT_FLOAT_EQ(out[0], -4.f * 4.f / 15.f);
  EXPECT_EQ(out[1], 0.f);
  EXPECT_FLOAT_EQ(out[2], -4.f);
}

TEST(Affine, ZeroRangeDoesNotDivideByZero) {
  for (bool sym : {false, true}) {
    const QuantParams p = params(8, sym, per_tensor(), {{0.f, 0.f}});
    EXPECT_EQ(p.scale[0], kZeroRangeScale);
    EXPECT_EQ(p.zero_point[0], 0.f);
    EXPECT_EQ(fq({0.f, 0.f, 0.f}, 1, 3, p), (std::vector<float>{0.f, 0.f, 0.f}));
    // Anything else saturates within 255 * FLT_MIN of zero: finite, never NaN.
    const std::vector<float> out = fq({1.f, -1e30f}, 1, 2, p);
    EXPECT_TRUE(std::isfinite(out[0]) && std::isfinite(out[1]));
    EXPECT_LE(std::fabs(out[0]), 255 * kZeroRangeScale);
  }
}

TEST(Affine, NaNIsAnErrorNamingThePointAndPosition) {
  const QuantParams p = params(8, false, per_tensor(), {{-1.f, 1.f}});
  std::vector<float> x(2 * 40000, 0.5f);  // large enough for the parallel path
  x[40000 + 7] = std::nanf("");
  expect_error([&] { fake_quantize(x.data(), 2, 40000, p, "layers.0.attn.scores"); },
               {"layers.0.attn.scores", "NaN", "row 1", "column 7"});
  std::vector<float> y = {0.f, std::nanf("")};
  expect_error([&] { fake_quantize_ref(y.data(), 1, 2, p, "ref.point"); }, {"ref.point", "NaN", "column 1"});
  std::vector<int32_t> codes(2);
  expect_error([&] { quantize(y.data(), 1, 2, p, codes.data(), "w.q"); }, {"w.q", "NaN"});
  // Per-token ranges are taken from the data itself, so a NaN fails there already.
  QuantParams tok;
  tok.grouping = per_token();
  expect_error([&] { fake_quantize(y.data(), 1, 2, tok, "tok.point"); }, {"tok.point", "nan"});
}

TEST(Affine, InfinitySaturates) {
  const QuantParams p = params(8, true, per_tensor(), {{-127.f, 127.f}});
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(fq({inf, -inf}, 1, 2, p), (std::vector<float>{127.f, -128.f}));
}

TEST(Affine, BitsOutsideTwoToSixteenAreErrors) {
  expect_error([] { scale_zero_from_range({0.f, 1.f}, 1, false, "pt"); }, {"pt", "1 bits", "2..16"});
  expect_error([] { scale_zero_from_range({0.f, 1.f}, 17, true, "pt"); }, {"pt", "17 bits"});
  expect_error([] { scale_zero_from_range({1.f, 0.f}, 8, true, "pt"); }, {"pt", "lo > hi"});
  expect_error([] { scale_zero_from_range({0.f, INFINITY}, 8, true, "pt"); }, {"pt", "not finite"});
  QuantParams p = params(8, false, per_tensor(), {{0.f, 1.f}});
  p.bits = 0;
  std::vector<float> x = {1.f};
  expect_error([&] { fake_quantize(x.data(), 1, 1, p, "pt"); }, {"pt", "0 bits"});
}

TEST(Affine, SixteenBitErrorIsTiny) {
  // s = 2 / 65535 ≈ 3.05e-5, so |x - x̂| <= s/2 ≈ 1.5e-5 across [-1, 1].
  const QuantParams p = params(16, false, per_tensor(), {{-1.f, 1.f}});
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(10000);
  for (float& v : x) v = u(rng);
  const std::vector<float> out = fq(x, 1, 10000, p);
  double max_err = 0;
  for (size_t i = 0; i < x.size(); ++i) max_err = std::max(max_err, double(std::fabs(x[i] - out[i])));
  EXPECT_LE(max_err, 2.0 / 65535 / 2 * 1.001);
  EXPECT_GT(max_err, 2.0 / 65535 / 2 * 0.9);  // and the bound is nearly reached: no free lunch
}

TEST(Affine, ErrorWithinHalfAStepInsideTheRangeForEveryWidth) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-0.7f, 2.3f);
  std::vector<float> x(5000);
  for (float& v : x) v = u(rng);
  for (int bits = 2; bits <= 16; ++bits)
    for (bool sym : {false, true}) {
      const QuantParams p = params(bits, sym, per_tensor(), {{-0.7f, 2.3f}});
      const std::vector<float> out = fq(x, 1, 5000, p);
      // Inside [lo, hi] the nearest level is at most s/2 away (plus float rounding of s·q). The
      // symmetric grid covers [-absmax - s, absmax] so the whole data range is inside it too.
      for (size_t i = 0; i < x.size(); ++i)
        ASSERT_LE(std::fabs(x[i] - out[i]), p.scale[0] * 0.5f * (1 + 1e-4f) + 1e-6f)
            << bits << " bits, symmetric " << sym << ", x " << x[i];
    }
}

TEST(Granularity, PerChannelRowsHandComputed) {
  // Symmetric 4-bit (qmax 7). Row 0 absmax 7 -> s = 1; row 1 absmax 14 -> s = 2.
  // Row 0: -7 -> -7, 2.4 -> 2, 3.5 -> 4 (tie to even), 0.5 -> 0.
  // Row 1 (/2): 7, -2.5 -> -2, 0.5 -> 0, 1.5 -> 2; times 2: 14, -4, 0, 4.
  const QuantParams p = params(4, true, per_channel(0), {{-7.f, 3.5f}, {-5.f, 14.f}});
  EXPECT_EQ(p.scale, (std::vector<float>{1.f, 2.f}));
  EXPECT_EQ(fq({-7.f, 2.4f, 3.5f, 0.5f, 14.f, -5.f, 1.f, 3.f}, 2, 4, p),
            (std::vector<float>{-7.f, 2.f, 4.f, 0.f, 14.f, -4.f, 0.f, 4.f}));
}

TEST(Granularity, PerChannelColumnsHandComputed) {
  // Activation [3 tokens, 2 channels], symmetric 4-bit: channel 0 s = 1, channel 1 s = 0.5.
  // Channel 0: 1.4 -> 1, -2.6 -> -3, 9 -> 7 (clamped). Channel 1 (/0.5): 0.3 -> 0.6 -> 1 -> 0.5;
  // -1.3 -> -2.6 -> -3 -> -1.5; 3.5 -> 7 -> 3.5.
  const QuantParams p = params(4, true, per_channel(1), {{-7.f, 7.f}, {-3.5f, 3.5f}});
  EXPECT_EQ(fq({1.4f, 0.3f, -2.6f, -1.3f, 9.f, 3.5f}, 3, 2, p),
            (std::vector<float>{1.f, 0.5f, -3.f, -1.5f, 7.f, 3.5f}));
}

TEST(Granularity, PerGroupHandComputed) {
  // [2, 8] with groups of 4 columns, symmetric 4-bit: scales 1, 2 (row 0), 0.5, 0.25 (row 1).
  const QuantParams p =
      params(4, true, per_group(4), {{-7.f, 7.f}, {-14.f, 0.f}, {0.f, 3.5f}, {-1.75f, 1.f}});
  EXPECT_EQ(p.scale, (std::vector<float>{1.f, 2.f, 0.5f, 0.25f}));
  // Row 0: group 0 /1: 1.5 -> 2; group 1 /2: 3 -> 1.5 -> 2 -> 4.
  // Row 1: group 0 /0.5: 0.3 -> 0.6 -> 1 -> 0.5; group 1 /0.25: 0.3 -> 1.2 -> 1 -> 0.25.
  const std::vector<float> x = {1.5f, 0.f, 0.f, 0.f, 3.f, 0.f, 0.f, 0.f,
                                0.3f, 0.f, 0.f, 0.f, 0.3f, 0.f, 0.f, 0.f};
  const std::vector<float> out = fq(x, 2, 8, p);
  EXPECT_EQ(out[0], 2.f);
  EXPECT_EQ(out[4], 4.f);
  EXPECT_EQ(out[8], 0.5f);
  EXPECT_EQ(out[12], 0.25f);
  std::vector<float> y(2 * 6);
  expect_error([&] { fake_quantize(y.data(), 2, 6, p, "w.fc1"); },
               {"w.fc1", "group_size 4", "does not divide the 6 columns"});
}

TEST(Granularity, PerEmbeddingGroupUsesTheGroupOfEachColumn) {
  // 4 channels in groups {0, 2} -> 0 and {1, 3} -> 1; symmetric 4-bit scales 1 and 0.1.
  const QuantParams p = params(4, true, per_embedding_group({0, 1, 0, 1}), {{-7.f, 7.f}, {-0.7f, 0.7f}});
  const std::vector<float> out = fq({2.2f, 0.33f, -3.6f, 5.f}, 1, 4, p);
  EXPECT_EQ(out[0], 2.f);
  EXPECT_FLOAT_EQ(out[1], 0.3f);
  EXPECT_EQ(out[2], -4.f);
  EXPECT_FLOAT_EQ(out[3], 0.7f);  // 5 / 0.1 = 50 -> clamped to 7
  std::vector<float> y(5);
  expect_error([&] { fake_quantize(y.data(), 1, 5, p, "embed.out"); }, {"embed.out", "4 channels", "5 columns"});
}

TEST(Granularity, PerTokenTakesEachRowsRangeAtRunTime) {
  // Row 0 spans [0, 2.55] -> s = 0.01, z = 0; row 1 spans [-1, 0.5] at 8 bits -> s = 1.5/255,
  // z = round(1 / s) = 170.
  QuantParams p;
  p.bits = 8;
  p.symmetric = false;
  p.grouping = per_token();
  const std::vector<float> x = {0.f, 1.234f, 2.55f, -1.f, 0.2f, 0.5f};
  const QuantParams rows = per_token_params(x.data(), 2, 3, 8, false, "t");
  EXPECT_FLOAT_EQ(rows.scale[0], 0.01f);
  EXPECT_FLOAT_EQ(rows.scale[1], 1.5f / 255);
  EXPECT_EQ(rows.zero_point[1], 170.f);
  const std::vector<float> out = fq(x, 2, 3, p);
  EXPECT_TRUE(bitwise_equal(out, fq(x, 2, 3, rows)));
  EXPECT_FLOAT_EQ(out[1], 123 * 0.01f);
  std::vector<int32_t> codes(6);
  expect_error([&] { quantize(x.data(), 2, 3, p, codes.data(), "tok"); }, {"tok", "per_token_params"});
}

// Data with exact ties, saturation both ways, zeros and infinities, for the kernel comparisons.
std::vector<float> awkward_data(int64_t n, uint32_t seed, float scale_hint) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::uniform_int_distribution<int> k(-300, 300);
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) {
    switch (i % 5) {
      case 0: x[i] = g(rng); break;
      case 1: x[i] = (k(rng) + 0.5f) * scale_hint; break;  // near-ties
      case 2: x[i] = g(rng) * 50.f; break;                  // saturating
      case 3: x[i] = i % 2 ? 0.f : -0.f; break;
      default: x[i] = g(rng) * 0.01f; break;
    }
  }
  x[n / 2] = std::numeric_limits<float>::infinity();
  x[n / 3] = -std::numeric_limits<float>::infinity();
  return x;
}

std::vector<Range> random_ranges(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.01f, 3.f);
  std::vector<Range> r(n);
  for (Range& v : r) v = {-u(rng), u(rng)};
  return r;
}

TEST(Kernels, OptimisedMatchesReferenceBitForBit) {
  const int64_t rows = 24, cols = 96;
  const std::vector<Grouping> groupings = {per_tensor(), per_channel(0), per_channel(1), per_group(32),
                                           per_embedding_group(contiguous_channel_groups(cols, 5)),
                                           per_token()};
  for (const Grouping& g : groupings)
    for (int bits : {2, 3, 4, 8, 12, 16})
      for (bool sym : {false, true}) {
        QuantParams p;
        if (g.granularity == Granularity::PerToken) {
          p.bits = bits;
          p.symmetric = sym;
          p.grouping = g;
        } else {
          p = params(bits, sym, g, random_ranges(group_count(g, rows, cols, "t"), bits * 7 + sym));
        }
        std::vector<float> x = awkward_data(rows * cols, bits, 0.05f);
        if (g.granularity == Granularity::PerToken)  // per-token ranges must be finite
          for (float& v : x)
            if (std::isinf(v)) v = 0.f;
        std::vector<float> a = x, b = x;
        fake_quantize(a.data(), rows, cols, p, "t");
        fake_quantize_ref(b.data(), rows, cols, p, "t");
        ASSERT_TRUE(bitwise_equal(a, b)) << granularity_name(g.granularity) << " " << bits << " " << sym;
        if (g.granularity == Granularity::PerToken) continue;
        std::vector<int32_t> qa(rows * cols), qb(rows * cols);
        quantize(x.data(), rows, cols, p, qa.data(), "t");
        quantize_ref(x.data(), rows, cols, p, qb.data(), "t");
        ASSERT_EQ(qa, qb);
        std::vector<float> da(rows * cols), db(rows * cols);
        dequantize(qa.data(), rows, cols, p, da.data(), "t");
        dequantize_ref(qb.data(), rows, cols, p, db.data(), "t");
        ASSERT_TRUE(bitwise_equal(da, db));
        ASSERT_TRUE(bitwise_equal(da, a)) << "dequantize(quantize(x)) != fake_quantize(x)";
      }
}

TEST(Kernels, FractionalZeroPointsFakeQuantizeLikeTheReference) {
  // QAT may learn a non-integral zero point: fake quantization still follows the formula.
  QuantParams p = params(8, false, per_channel(0), random_ranges(4, 1));
  p.zero_point = {10.25f, 3.5f, 0.75f, 200.125f};
  std::vector<float> a = awkward_data(4 * 50, 9, 0.01f), b = a;
  fake_quantize(a.data(), 4, 50, p, "t");
  fake_quantize_ref(b.data(), 4, 50, p, "t");
  EXPECT_TRUE(bitwise_equal(a, b));
  std::vector<int32_t> codes(200);
  expect_error([&] { quantize(a.data(), 4, 50, p, codes.data(), "w"); }, {"w", "zero_point[0]", "not an integer"});
}

TEST(Kernels, FakeQuantizeIsIdempotent) {
  for (const Grouping& g : {per_tensor(), per_channel(0), per_group(16), per_channel(1)})
    for (int bits : {2, 4, 8, 16})
      for (bool sym : {false, true}) {
        const QuantParams p = params(bits, sym, g, random_ranges(group_count(g, 8, 64, "t"), bits));
        const std::vector<float> once = fq(awkward_data(8 * 64, bits + 1, 0.1f), 8, 64, p);
        EXPECT_TRUE(bitwise_equal(fq(once, 8, 64, p), once)) << bits << " " << sym;
      }
}

TEST(Kernels, ResultsDoNotDependOnTheThreadCount) {
  const int64_t rows = 512, cols = 768;  // above the parallel threshold
  const std::vector<float> x = awkward_data(rows * cols, 5, 0.02f);
  for (const Grouping& g : {per_tensor(), per_channel(0), per_channel(1), per_group(64)}) {
    const QuantParams p = params(8, false, g, random_ranges(group_count(g, rows, cols, "t"), 2));
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const std::vector<float> one = fq(x, rows, cols, p);
    omp_set_num_threads(4);
    const std::vector<float> four = fq(x, rows, cols, p);
    omp_set_num_threads(saved);
    EXPECT_TRUE(bitwise_equal(one, four)) << granularity_name(g.granularity);
  }
}

TEST(Kernels, ByteCodes) {
  const QuantParams sym = params(8, true, per_tensor(), {{-127.f, 127.f}});
  const QuantParams asym = params(8, false, per_tensor(), {{0.f, 255.f}});
  const std::vector<float> x = {-300.f, -1.6f, 0.f, 2.5f, 300.f};
  std::vector<int8_t> i8(5);
  quantize(x.data(), 1, 5, sym, i8.data(), "w");
  EXPECT_EQ(i8, (std::vector<int8_t>{-128, -2, 0, 2, 127}));
  std::vector<uint8_t> u8(5);
  quantize(x.data(), 1, 5, asym, u8.data(), "w");
  EXPECT_EQ(u8, (std::vector<uint8_t>{0, 0, 0, 2, 255}));
  std::vector<float> back(5);
  dequantize(u8.data(), 1, 5, asym, back.data(), "w");
  EXPECT_EQ(back, (std::vector<float>{0.f, 0.f, 0.f, 2.f, 255.f}));
  expect_error([&] { quantize(x.data(), 1, 5, asym, i8.data(), "w.q"); }, {"w.q", "uint8"});
  const QuantParams wide = params(12, true, per_tensor(), {{-1.f, 1.f}});
  expect_error([&] { quantize(x.data(), 1, 5, wide, i8.data(), "w.q"); }, {"w.q", "12-bit"});
}

TEST(Kernels, DequantizeRejectsCodesOutsideTheRange) {
  const QuantParams p = params(4, false, per_tensor(), {{0.f, 1.f}});
  const std::vector<int32_t> codes = {0, 15, 16};
  std::vector<float> out(3);
  expect_error([&] { dequantize(codes.data(), 1, 3, p, out.data(), "w.deq"); },
               {"w.deq", "code 16", "column 2", "[0, 15]"});
}

TEST(Params, ValidationNamesTheProblem) {
  QuantParams p = params(8, false, per_channel(0), {{0.f, 1.f}, {0.f, 2.f}});
  std::vector<float> x(3 * 4);
  expect_error([&] { fake_quantize(x.data(), 3, 4, p, "w.q_proj"); },
               {"w.q_proj", "per_channel", "needs 3 scales", "have 2"});
  p.scale[1] = -1.f;
  expect_error([&] { validate(p, "w"); }, {"scale[1]", "positive"});
  p.scale[1] = 1.f;
  p.zero_point.pop_back();
  expect_error([&] { validate(p, "w"); }, {"2 scales but 1 zero points"});
  QuantParams s = params(8, true, per_tensor(), {{-1.f, 1.f}});
  s.zero_point[0] = 3.f;
  expect_error([&] { validate(s, "w"); }, {"zero_point[0]", "symmetric"});
  s.zero_point[0] = 0.f;
  s.scale[0] = std::numeric_limits<float>::quiet_NaN();
  expect_error([&] { validate(s, "w"); }, {"scale[0]"});
  expect_error([] { per_channel(2); }, {"channel_axis 2"});
  expect_error([] { per_group(0); }, {"group_size 0"});
  expect_error([] { per_embedding_group({0, 2, 2}); }, {"group 1 has no channel"});
  expect_error([] { parse_granularity("per_row"); }, {"per_row", "per_tensor", "per_token"});
}

TEST(ParamsJson, RoundTripsExactlyForEveryGranularity) {
  const std::vector<Grouping> groupings = {per_tensor(), per_channel(0), per_channel(1), per_group(4),
                                           per_embedding_group({1, 0, 1, 0, 2, 2, 1, 0})};
  for (const Grouping& g : groupings) {
    const QuantParams p = params(6, false, g, random_ranges(group_count(g, 2, 8, "t"), 11));
    const std::string text = nlohmann::json(p).dump();
    const QuantParams q = nlohmann::json::parse(text).get<QuantParams>();
    EXPECT_EQ(q.bits, 6);
    EXPECT_FALSE(q.symmetric);
    EXPECT_EQ(q.grouping.granularity, g.granularity);
    EXPECT_EQ(q.grouping.channel_axis, g.channel_axis);
    EXPECT_EQ(q.grouping.group_size, g.group_size);
    EXPECT_EQ(q.grouping.channel_group, g.channel_group);
    EXPECT_TRUE(bitwise_equal(q.scale, p.scale)) << text;
    EXPECT_TRUE(bitwise_equal(q.zero_point, p.zero_point));
  }
  QuantParams tok;
  tok.bits = 8;
  tok.grouping = per_token();
  EXPECT_EQ(nlohmann::json(tok).get<QuantParams>().grouping.granularity, Granularity::PerToken);
}

TEST(ParamsJson, ErrorsNameTheField) {
  using nlohmann::json;
  const json good = json::parse(
      R"({"bits": 8, "symmetric": false, "granularity": "per_group", "group_size": 2,
          "scale": [0.5, 0.25], "zero_point": [3, 0]})");
  EXPECT_EQ(quant_params_from_json(good, "calib.json").groups(), 2);
  auto with = [&](const std::string& key, const json& value) {
    json j = good;
    if (value.is_discarded()) j.erase(key); else j[key] = value;
    return j;
  };
  const json erase = json(json::value_t::discarded);
  expect_error([&] { quant_params_from_json(with("scale", erase), "calib.json: layers.0.q"); },
               {"calib.json: layers.0.q", "field 'scale' is missing"});
  expect_error([&] { quant_params_from_json(with("bits", "8"), "f"); }, {"field 'bits'", "integer"});
  expect_error([&] { quant_params_from_json(with("bits", 1), "f"); }, {"field 'bits' = 1"});
  expect_error([&] { quant_params_from_json(with("symmetric", 1), "f"); }, {"field 'symmetric'"});
  expect_error([&] { quant_params_from_json(with("granularity", "per_row"), "f"); },
               {"field 'granularity'", "per_row"});
  expect_error([&] { quant_params_from_json(with("group_size", 0), "f"); }, {"field 'group_size' = 0"});
  expect_error([&] { quant_params_from_json(with("groupsize", 2), "f"); }, {"field 'groupsize' is not allowed"});
  expect_error([&] { quant_params_from_json(with("channel_axis", 0), "f"); },
               {"field 'channel_axis' is not allowed for per_group"});
  expect_error([&] { quant_params_from_json(with("scale", json::array({0.5, "x"})), "f"); },
               {"field 'scale'[1]", "not a number"});
  expect_error([&] { quant_params_from_json(with("scale", json::array({0.5, -2})), "f"); },
               {"scale[1] = -2", "positive"});
  expect_error([&] { quant_params_from_json(with("zero_point", json::array({3})), "f"); },
               {"2 scales but 1 zero points"});
  expect_error([&] { quant_params_from_json(with("scale", json::array({0.5, 1e300})), "f"); },
               {"field 'scale'[1]", "float"});
  const json peg = json::parse(
      R"({"bits": 8, "symmetric": true, "granularity": "per_embedding_group",
          "channel_group": [0, 2, 2], "scale": [1, 1, 1], "zero_point": [0, 0, 0]})");
  expect_error([&] { quant_params_from_json(peg, "f"); }, {"field 'channel_group'", "group 1 has no channel"});
  expect_error([&] { json(1).get<QuantParams>(); }, {"quant params", "JSON object"});
}

}  // namespace
}  // namespace tquant
