// Packed weights times int8 activations (kernels/qgemv_q8act.h): the activation quantizer's
// golden behaviour; the scalar reference against a closed form computed here in double; every
// SIMD kernel (both AVX2 variants, vpmaddubsw and AVX-VNNI, where the CPU has the latter) against
// the reference bit for bit on ragged shapes and extreme codes, one token (GEMV) and many (the
// tiled GEMM, full and partial register blocks and tiles); independence of token blocking and
// thread count; the distance to the float product; refusals.
#include "kernels/qgemv_q8act.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <sstream>

#include "expect_error.h"
#include "kernels/qgemv.h"
#include "packed_test_matrices.h"

namespace tquant {
namespace {

using testing::random_matrix;
using testing::random_x;

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

std::vector<float> run_at(SimdLevel level, const PackedMatrix& w, const Q8Activations& xq) {
  ScopedSimdLevel force(level);
  std::vector<float> y(static_cast<size_t>(xq.tokens * w.rows), NAN);
  packed_matmul_q8act(w, xq, nullptr, y.data());
  return y;
}

// One SIMD kernel set: a level, and at AVX2 which many-token dot product.
struct Variant {
  SimdLevel level;
  bool avx_vnni;
  const char* name;
};

// Every SIMD variant this CPU runs (the AVX2 level with and without AVX-VNNI where it has it,
// whatever TQUANT_SIMD says: packed_matmul_q8act would pick only one of them).
std::vector<Variant> simd_variants() {
  std::vector<Variant> out;
  if (detected_simd_level() >= SimdLevel::AVX2) {
    out.push_back({SimdLevel::AVX2, false, "avx2"});
    if (cpu_has_avx_vnni()) out.push_back({SimdLevel::AVX2, true, "avx2 + avx-vnni"});
  }
  if (detected_simd_level() >= SimdLevel::AVX512) out.push_back({SimdLevel::AVX512, false, "avx512"});
  return out;
}

std::vector<float> run_variant(const Variant& v, const PackedMatrix& w, const Q8Activations& xq,
                               const float* bias = nullptr) {
  std::vector<float> y(static_cast<size_t>(xq.tokens * w.rows), NAN);
  q8act::matmul_at(w, xq, bias, y.data(), v.level, v.avx_vnni);
  return y;
}

// ---------------------------------------------------------------------------------------------
// Activation quantization
// ---------------------------------------------------------------------------------------------

TEST(Q8Activations, RoundsHalfToEvenWithTheMaximumAt127) {
  // max |x| = 127 makes d exactly 1, so q is x rounded: ties go to the even neighbour.
  std::vector<float> x(32, 0.f);
  const float in[] = {127.f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.5f, 126.5f, -126.5f, 0.49f, -0.51f, 7.f};
  const int expect[] = {127, 0, 2, 2, 0, -2, -2, 4, 126, -126, 0, -1, 7};
  for (size_t i = 0; i < std::size(in); ++i) x[i] = in[i];
  const Q8Activations a = quantize_activations_q8(x.data(), 1, 32);
  EXPECT_EQ(a.d[0], 1.f);
  int32_t sum = 0;
  for (size_t i = 0; i < std::size(in); ++i) {
    EXPECT_EQ(a.q[i], expect[i]) << "x = " << in[i];
    sum += expect[i];
  }
  for (size_t i = std::size(in); i < 32; ++i) EXPECT_EQ(a.q[i], 0);
  EXPECT_EQ(a.sum[0], sum);
}

TEST(Q8Activations, LargestMagnitudeMapsToPlusOrMinus127) {
  std::mt19937 rng(11);
  const int64_t tokens = 3, cols = 256;
  std::vector<float> x = random_x(tokens * cols, rng);
  for (int64_t i = 0; i < tokens * cols; i += 64) x[i] = -9.f;  // negative maxima too
  const Q8Activations a = quantize_activations_q8(x.data(), tokens, cols);
  ASSERT_EQ(a.blocks(), 8);
  for (int64_t b = 0; b < tokens * 8; ++b) {
    const float* xb = x.data() + b * 32;
    int64_t arg = 0;
    for (int j = 1; j < 32; ++j)
      if (std::fabs(xb[j]) > std::fabs(xb[arg])) arg = j;
    EXPECT_EQ(a.d[b], std::fabs(xb[arg]) / 127.f);
    EXPECT_EQ(a.q[b * 32 + arg], xb[arg] > 0 ? 127 : -127) << "block " << b;
    int32_t sum = 0;
    for (int j = 0; j < 32; ++j) {
      const int q = a.q[b * 32 + j];
      sum += q;
      EXPECT_EQ(q, static_cast<int>(std::nearbyint(xb[j] / a.d[b]))) << "block " << b << ", element " << j;
    }
    EXPECT_EQ(a.sum[b], sum);
  }
}

TEST(Q8Activations, ZeroAndNonFiniteBlocks) {
  std::vector<float> x(4 * 32, 0.25f);
  std::fill(x.begin(), x.begin() + 32, 0.f);  // block 0: all zero
  x[32 + 5] = NAN;                             // block 1
  x[64 + 31] = -INFINITY;                      // block 2; block 3 stays finite
  const Q8Activations a = quantize_activations_q8(x.data(), 1, 128);
  EXPECT_EQ(a.d[0], 0.f);
  EXPECT_TRUE(std::isnan(a.d[1]));
  EXPECT_TRUE(std::isnan(a.d[2]));
  EXPECT_EQ(a.d[3], 0.25f / 127.f);
  for (int64_t b = 0; b < 3; ++b) {
    EXPECT_EQ(a.sum[b], 0);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(a.q[b * 32 + j], 0) << "block " << b;
  }
  EXPECT_EQ(a.sum[3], 32 * 127);

  // An all-zero input gives exact zeros; a NaN or an Inf makes the outputs NaN, as in float.
  std::mt19937 rng(12);
  const PackedMatrix w = random_matrix(QFormat::Q4_0, 4, 32, 5, 128, rng);
  for (SimdLevel level : available_simd_levels()) {
    const std::vector<float> zero(128, 0.f);
    for (float v : run_at(level, w, quantize_activations_q8(zero.data(), 1, 128))) EXPECT_TRUE(same_bits(v, 0.f));
    for (float v : run_at(level, w, a)) EXPECT_TRUE(std::isnan(v)) << simd_level_name(level);
  }

  // The same among other tokens (the many-token kernels): zeros, a NaN, finite values.
  std::vector<float> three(3 * 128, 0.f);
  std::copy(x.begin(), x.end(), three.begin() + 128);
  std::copy(x.begin(), x.end(), three.begin() + 256);
  three[256 + 32 + 5] = 0.5f;  // token 2 finite
  three[256 + 64 + 31] = 2.f;
  const Q8Activations many = quantize_activations_q8(three.data(), 3, 128);
  const std::vector<float> ref = run_at(SimdLevel::Scalar, w, many);
  for (const Variant& v : simd_variants()) {
    const std::vector<float> y = run_variant(v, w, many);
    for (int64_t r = 0; r < w.rows; ++r) {
      EXPECT_TRUE(same_bits(y[r], 0.f)) << v.name;
      EXPECT_TRUE(std::isnan(y[w.rows + r])) << v.name;
      EXPECT_FALSE(std::isnan(ref[2 * w.rows + r]));
      EXPECT_TRUE(same_bits(y[2 * w.rows + r], ref[2 * w.rows + r])) << v.name;
    }
  }
}

TEST(Q8Activations, ColumnsMustBeWholeBlocks) {
  const std::vector<float> x(48, 1.f);
  testing::expect_error([&] { quantize_activations_q8(x.data(), 1, 48); }, {"multiple of 32"});
}

// ---------------------------------------------------------------------------------------------
// The product
// ---------------------------------------------------------------------------------------------

struct Case {
  QFormat format;
  int bits;
  int64_t group;  // Packed only; 0 = one group per row
};

// The ggml formats; tquant codes of every width the SIMD kernels decode, in groups of 32, 64 and
// 128 columns and one group per row; two widths only the scalar kernel takes.
const Case kCases[] = {
    {QFormat::Q4_0, 4, 32},    {QFormat::Q4_1, 4, 32},   {QFormat::Q8_0, 8, 32},   {QFormat::Packed, 2, 32},
    {QFormat::Packed, 2, 64},  {QFormat::Packed, 2, 128}, {QFormat::Packed, 2, 0},  {QFormat::Packed, 4, 32},
    {QFormat::Packed, 4, 64},  {QFormat::Packed, 4, 128}, {QFormat::Packed, 4, 0},  {QFormat::Packed, 8, 32},
    {QFormat::Packed, 8, 64},  {QFormat::Packed, 8, 128}, {QFormat::Packed, 8, 0},  {QFormat::Packed, 3, 32},
    {QFormat::Packed, 5, 64},
};

std::string describe(const Case& c, int64_t cols) {
  std::ostringstream s;
  s << qformat_name(c.format);
  if (c.format == QFormat::Packed) s << " " << c.bits << "-bit g" << c.group;
  s << ", " << cols << " columns";
  return s.str();
}

// Columns for a case: block counts around the kernels' runs of 4, 8 and 16 blocks, up to 4096.
std::vector<int64_t> columns(const Case& c) {
  std::vector<int64_t> out;
  const int64_t step = c.format == QFormat::Packed && c.group > 32 ? c.group : 32;
  for (int64_t n : {int64_t{32}, int64_t{96}, int64_t{160}, int64_t{512}, int64_t{544}, int64_t{736}, int64_t{4096}})
    if (n % step == 0) out.push_back(n);
  return out;
}

// The definition in closed form, in double: Σ_k W[r, k] · d_x · q_x with W from
// PackedMatrix::weight (the dequantizer) and the activations' own int8 codes and scales.
// The reference rounds the two-scale products, one fused add per block and a 16-leaf tree; W
// itself is rounded (Q4_1's d·q + m), so allow a few units in the last place of Σ |terms| per
// block.
TEST(PackedMatmulQ8, ReferenceMatchesTheClosedForm) {
  std::mt19937 rng(13);
  for (const Case& c : kCases)
    for (const int64_t cols : columns(c)) {
      const int64_t rows = 5, tokens = 3;
      const PackedMatrix w = random_matrix(c.format, c.bits, c.group, rows, cols, rng);
      const std::vector<float> x = random_x(tokens * cols, rng);
      const Q8Activations xq = quantize_activations_q8(x.data(), tokens, cols);
      const std::vector<float> y = run_at(SimdLevel::Scalar, w, xq);
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t r = 0; r < rows; ++r) {
          double exact = 0, magnitude = 0;
          for (int64_t k = 0; k < cols; ++k) {
            const double term = static_cast<double>(w.weight(r, k)) * xq.d[t * xq.blocks() + k / 32] * xq.q[t * cols + k];
            exact += term;
            magnitude += std::fabs(term);
          }
          const double bound = (static_cast<double>(xq.blocks()) + 24) * 0x1p-23 * magnitude + 1e-30;
          ASSERT_NEAR(y[t * rows + r], exact, bound) << describe(c, cols) << ", row " << r << ", token " << t;
        }
    }
}

// Compares every SIMD variant with the scalar reference on w and x, bit for bit.
void expect_every_variant_exact(const PackedMatrix& w, const std::vector<float>& x, int64_t tokens,
                                const std::string& what, int& compared) {
  const Q8Activations xq = quantize_activations_q8(x.data(), tokens, w.cols);
  const std::vector<float> ref = run_at(SimdLevel::Scalar, w, xq);
  for (const Variant& v : simd_variants()) {
    const std::vector<float> y = run_variant(v, w, xq);
    for (int64_t i = 0; i < tokens * w.rows; ++i)
      ASSERT_TRUE(same_bits(y[i], ref[i])) << what << ", " << w.rows << " rows, " << tokens << " tokens at " << v.name
                                           << ": row " << i % w.rows << ", token " << i / w.rows << ": " << y[i]
                                           << " vs " << ref[i];
    ++compared;
  }
}

// The SIMD levels compute the definition exactly, not just closely: random codes on ragged
// shapes (rows not a multiple of the row blocking, 1..5 tokens), and codes all at their extremes.
TEST(PackedMatmulQ8, EveryLevelEqualsTheReferenceBitForBit) {
  std::mt19937 rng(14);
  int compared = 0;
  for (const bool extremes : {false, true})
    for (const Case& c : kCases)
      for (const int64_t cols : columns(c))
        for (const int64_t rows : {int64_t{1}, int64_t{7}, int64_t{37}})
          for (const int64_t tokens : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{4}, int64_t{5}}) {
            if (cols == 4096 && rows * tokens > 40) continue;  // enough of the large shape
            const PackedMatrix w = random_matrix(c.format, c.bits, c.group, rows, cols, rng, extremes);
            std::vector<float> x = random_x(tokens * cols, rng);
            if (extremes)  // every activation code ±127
              for (float& v : x) v = v < 0 ? -1.f : 1.f;
            const std::string what = describe(c, cols) + (extremes ? " (extreme codes)" : "");
            expect_every_variant_exact(w, x, tokens, what, compared);
            if (HasFatalFailure()) return;
          }
  if (detected_simd_level() > SimdLevel::Scalar) {
    EXPECT_GT(compared, 0);
  }
}

// The many-token kernels: register blocks (4 rows × 4 tokens at AVX-512, 2 × 4 and 1 × 4 at AVX2)
// full and partial in both dimensions, the 16-row slices of the threads, tiles of 16 blocks full
// and partial, rows of up to 4 and 8 blocks (2 and 4 tokens packed in a tile, the last pack
// partial), and token counts that cross their blocks of tokens (up to 515, the length of an
// evaluation context).
TEST(PackedMatmulQ8, ManyTokensEqualTheReferenceBitForBit) {
  std::mt19937 rng(19);
  int compared = 0;
  for (const Case& c : kCases) {
    if (c.format == QFormat::Packed && c.bits != 2 && c.bits != 4 && c.bits != 8) continue;  // scalar anyway
    const int64_t step = c.format == QFormat::Packed && c.group > 32 ? c.group : 32;
    for (const int64_t cols : {int64_t{64}, int64_t{128}, int64_t{256}, int64_t{512}, int64_t{544}, int64_t{1408}}) {
      if (cols % step != 0) continue;
      for (const int64_t rows : {int64_t{2}, int64_t{4}, int64_t{5}, int64_t{16}, int64_t{19}})
        // AVX-512 tiles from 8 tokens (fewer go token by token): 9..11 leave 1..3 over.
        for (const int64_t tokens : {int64_t{2}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{8}, int64_t{9}, int64_t{10},
                                     int64_t{11}, int64_t{17}}) {
          const PackedMatrix w = random_matrix(c.format, c.bits, c.group, rows, cols, rng);
          expect_every_variant_exact(w, random_x(tokens * cols, rng), tokens, describe(c, cols), compared);
          if (HasFatalFailure()) return;
        }
    }
    // A context's worth of tokens (past several blocks of them), extreme codes too.
    for (const bool extremes : {false, true})
      for (const int64_t cols : {c.group > 32 ? 4 * c.group : int64_t{544}, c.group > 32 ? c.group : int64_t{128}}) {
        const PackedMatrix w = random_matrix(c.format, c.bits, c.group, 19, cols, rng, extremes);
        std::vector<float> x = random_x(515 * cols, rng);
        if (extremes)
          for (float& v : x) v = v < 0 ? -1.f : 1.f;
        expect_every_variant_exact(w, x, 515, describe(c, cols) + (extremes ? " (extreme codes)" : ""), compared);
        if (HasFatalFailure()) return;
      }
  }
  if (detected_simd_level() > SimdLevel::Scalar) {
    EXPECT_GT(compared, 0);
  }
}

// The SIMD kernels do run for the layouts they claim (else the test above compares the reference
// with itself), and the rest goes to the scalar kernel.
TEST(PackedMatmulQ8, LevelsPerLayout) {
  std::mt19937 rng(15);
  for (const Case& c : kCases) {
    const PackedMatrix w = random_matrix(c.format, c.bits, c.group, 2, 128, rng);
    const bool simd = c.format != QFormat::Packed || c.bits == 2 || c.bits == 4 || c.bits == 8;
    EXPECT_EQ(packed_matmul_q8act_level(w, SimdLevel::AVX512), simd ? SimdLevel::AVX512 : SimdLevel::Scalar)
        << describe(c, 128);
    EXPECT_EQ(packed_matmul_q8act_level(w, SimdLevel::AVX2), simd ? SimdLevel::AVX2 : SimdLevel::Scalar);
    EXPECT_TRUE(packed_q8act_supported(w));
  }
}

// A token's result does not depend on the other tokens of the call (one token goes through the
// GEMV kernels, several through the tiled GEMM in blocks of 4) nor on the thread count (rows are
// split, never a sum).
TEST(PackedMatmulQ8, TokenBlockingAndThreadsDoNotChangeResults) {
  std::mt19937 rng(16);
  for (const QFormat f : {QFormat::Q4_0, QFormat::Packed}) {
    const PackedMatrix w = random_matrix(f, 4, 32, 70, 544, rng);
    const std::vector<float> x = random_x(7 * 544, rng);
    const Q8Activations all_q = quantize_activations_q8(x.data(), 7, 544);
    std::vector<Variant> variants = simd_variants();
    variants.push_back({SimdLevel::Scalar, false, "scalar"});
    for (const Variant& v : variants) {
      const std::vector<float> all = run_variant(v, w, all_q);
      for (int64_t t = 0; t < 7; ++t) {
        const Q8Activations one = quantize_activations_q8(x.data() + t * 544, 1, 544);
        const std::vector<float> y = run_variant(v, w, one);
        for (int64_t r = 0; r < 70; ++r) ASSERT_TRUE(same_bits(y[r], all[t * 70 + r])) << v.name;
      }
      const Q8Activations pair = quantize_activations_q8(x.data() + 3 * 544, 2, 544);
      const std::vector<float> y = run_variant(v, w, pair);
      EXPECT_EQ(0, std::memcmp(y.data(), all.data() + 3 * 70, y.size() * sizeof(float))) << v.name;
      const int saved = omp_get_max_threads();
      omp_set_num_threads(1);
      const std::vector<float> serial = run_variant(v, w, all_q);
      omp_set_num_threads(2);
      const std::vector<float> parallel = run_variant(v, w, all_q);
      omp_set_num_threads(saved);
      EXPECT_EQ(0, std::memcmp(serial.data(), parallel.data(), serial.size() * sizeof(float))) << v.name;
      EXPECT_EQ(0, std::memcmp(serial.data(), all.data(), serial.size() * sizeof(float))) << v.name;
    }
  }
}

// Against the exact float product (packed_matmul) the only new error is the activations'
// rounding, at most d_x / 2 per element: |Σ W·(x − d·q)| ≤ Σ |W|·d/2.
TEST(PackedMatmulQ8, WithinTheActivationRoundingOfTheFloatProduct) {
  std::mt19937 rng(17);
  for (const Case& c : kCases) {
    const int64_t rows = 9, cols = 512, tokens = 2;
    const PackedMatrix w = random_matrix(c.format, c.bits, c.group, rows, cols, rng);
    const std::vector<float> x = random_x(tokens * cols, rng);
    std::vector<float> exact(tokens * rows), y(tokens * rows);
    packed_matmul(w, x.data(), tokens, nullptr, exact.data());
    packed_matmul_q8act(w, x.data(), tokens, nullptr, y.data());
    const Q8Activations xq = quantize_activations_q8(x.data(), tokens, cols);
    double differ = 0;
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t r = 0; r < rows; ++r) {
        double bound = 0, magnitude = 0;
        for (int64_t k = 0; k < cols; ++k) {
          bound += std::fabs(w.weight(r, k)) * xq.d[t * xq.blocks() + k / 32] / 2;
          magnitude += std::fabs(w.weight(r, k) * x[t * cols + k]);
        }
        const float e = exact[t * rows + r], q = y[t * rows + r];
        EXPECT_NEAR(q, e, bound * 1.001 + 1e-5 * magnitude) << describe(c, cols);
        differ += std::fabs(double(q) - e);
      }
    EXPECT_GT(differ, 0) << describe(c, cols) << ": int8 activations should change the product";
  }
}

TEST(PackedMatmulQ8, AddsTheBias) {
  // Two rows of 32 codes, one group each: W = s·(q − z) with q = 3, z = 1, s = 0.5 -> every weight 1.
  std::vector<uint8_t> codes(64, 3);
  const PackedMatrix w = PackedMatrix::from_codes(4, 0, 2, 32, codes, std::vector<float>{0.5f, 0.5f},
                                                  std::vector<float>{1.f, 1.f}, "test");
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i % 2 ? 127 : -127);  // d = 1: q = x exactly
  x[0] = 0.f;                                                                  // Σ x = 127
  const float bias[2] = {1.f, -2.f};
  for (SimdLevel level : available_simd_levels()) {
    ScopedSimdLevel force(level);
    float y[2];
    packed_matmul_q8act(w, x.data(), 1, bias, y);
    EXPECT_EQ(y[0], 128.f) << simd_level_name(level);
    EXPECT_EQ(y[1], 125.f) << simd_level_name(level);
  }
  // Several tokens (the tiled kernels): the same token three times.
  std::vector<float> x3;
  for (int t = 0; t < 3; ++t) x3.insert(x3.end(), x.begin(), x.end());
  const Q8Activations xq = quantize_activations_q8(x3.data(), 3, 32);
  for (const Variant& v : simd_variants()) {
    const std::vector<float> y = run_variant(v, w, xq, bias);
    for (int t = 0; t < 3; ++t) {
      EXPECT_EQ(y[2 * t], 128.f) << v.name;
      EXPECT_EQ(y[2 * t + 1], 125.f) << v.name;
    }
  }
}

TEST(PackedMatmulQ8, RefusesLayoutsAndShapesItCannotTake) {
  std::mt19937 rng(18);
  const PackedMatrix g16 = random_matrix(QFormat::Packed, 4, 16, 3, 64, rng);
  EXPECT_FALSE(packed_q8act_supported(g16));
  const std::vector<float> x(64, 1.f);
  std::vector<float> y(3);
  testing::expect_error([&] { packed_matmul_q8act(g16, x.data(), 1, nullptr, y.data()); },
                        {"groups of 16", "multiple of 32"});
  const PackedMatrix w = random_matrix(QFormat::Q4_0, 4, 32, 3, 64, rng);
  const Q8Activations wide = quantize_activations_q8(std::vector<float>(96, 1.f).data(), 1, 96);
  testing::expect_error([&] { packed_matmul_q8act(w, wide, nullptr, y.data()); }, {"width 96", "64 weight columns"});
}

}  // namespace
}  // namespace tquant
