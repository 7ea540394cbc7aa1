// Min-max / RTN grids checked against hand-computed values, the Hessian-aware grid search and the
// MSE grid against a brute-force evaluation of every candidate, and the Hessian helpers.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "expect_error.h"
#include "wquant/grid_search.h"
#include "wquant/hessian.h"

namespace tquant::wq {
namespace {

Tensor matrix(int64_t rows, int64_t cols, const std::vector<float>& v) {
  Tensor t({rows, cols});
  for (int64_t i = 0; i < rows * cols; ++i) t[i] = v[i];
  return t;
}

WeightFormat fmt(int bits, bool symmetric, int64_t group = 0) {
  WeightFormat f;
  f.bits = bits;
  f.symmetric = symmetric;
  f.group = group;
  return f;
}

std::vector<int> codes_of(const QuantizedWeight& q) { return {q.codes.begin(), q.codes.end()}; }

// --- min-max grid and rounding, hand-computed (scales chosen exactly representable) ---

TEST(WquantMinmax, Asymmetric2BitRoundsHalfToEven) {
  // lo = -1, hi = 2: scale = 3/3 = 1, zero = 1. 0.5 -> 0 and 1.5 -> 2 (ties to even), 2 -> 3.
  const Tensor W = matrix(1, 4, {-1.f, 0.5f, 1.5f, 2.f});
  const WeightGrid g = minmax_grid(W, fmt(2, false));
  EXPECT_EQ(g.scale, std::vector<float>{1.f});
  EXPECT_EQ(g.zero, std::vector<float>{1.f});
  EXPECT_EQ(codes_of(round_to_grid(W, g)), (std::vector<int>{0, 1, 3, 3}));
}

TEST(WquantMinmax, Asymmetric3BitNonNegativeRow) {
  // lo = min(0, 0) = 0, hi = 7: scale 1, zero 0; 2.5 -> 2, 3.5 -> 4.
  const Tensor W = matrix(1, 4, {0.f, 2.5f, 3.5f, 7.f});
  const WeightGrid g = minmax_grid(W, fmt(3, false));
  EXPECT_EQ(g.scale[0], 1.f);
  EXPECT_EQ(g.zero[0], 0.f);
  EXPECT_EQ(codes_of(round_to_grid(W, g)), (std::vector<int>{0, 2, 4, 7}));
}

TEST(WquantMinmax, Asymmetric4BitAllNegativeRow) {
  // hi = max(max, 0) = 0, lo = -15: scale 1, zero 15; -7.5 -> -8 + 15 = 7.
  const Tensor W = matrix(1, 3, {-15.f, -7.5f, -2.f});
  const WeightGrid g = minmax_grid(W, fmt(4, false));
  EXPECT_EQ(g.scale[0], 1.f);
  EXPECT_EQ(g.zero[0], 15.f);
  EXPECT_EQ(codes_of(round_to_grid(W, g)), (std::vector<int>{0, 7, 13}));
}

TEST(WquantMinmax, Asymmetric8Bit) {
  // lo = -1, hi = 254: scale 255/255 = 1, zero 1; 100.5 -> 100 + 1.
  const Tensor W = matrix(1, 4, {-1.f, 254.f, 100.5f, 3.2f});
  const WeightGrid g = minmax_grid(W, fmt(8, false));
  EXPECT_EQ(g.scale[0], 1.f);
  EXPECT_EQ(g.zero[0], 1.f);
  EXPECT_EQ(codes_of(round_to_grid(W, g)), (std::vector<int>{0, 255, 101, 4}));
}

TEST(WquantMinmax, SymmetricUsesGptqConvention) {
  // scale = 2 max|w| / maxq, zero = 2^(b-1); the top code is one step short of max|w|.
  {  // 2 bits: max|w| = 1.5 -> scale 1, zero 2; -1.5 -> -2 + 2 = 0; 1.5 -> 2 + 2 = 4 -> 3.
    const Tensor W = matrix(1, 4, {-1.5f, 0.5f, 1.5f, -0.4f});
    const WeightGrid g = minmax_grid(W, fmt(2, true));
    EXPECT_EQ(g.scale[0], 1.f);
    EXPECT_EQ(g.zero[0], 2.f);
    EXPECT_EQ(codes_of(round_to_grid(W, g)), (std::vector<int>{0, 2, 3, 2}));
  }
  {  // 3 bits: max|w| = 3.5 -> scale 1, zero 4.
    const Tensor W = matrix(1, 4, {3.5f, -3.5f, 2.5f, -0.5f});
    const WeightGrid g = minmax_grid(W, fmt(3, true));
    EXPECT_EQ(g.scale[0], 1.f);
    EXPECT_EQ(g.zero[0], 4.f);
    EXPECT_EQ(codes_of(round_to_grid(W, g)), (std::vector<int>{7, 0, 6, 4}));
  }
  {  // 4 bits, a row with no negative value still gets the full 2 max|w| / 15 (see the header).
    const Tensor W = matrix(1, 2, {3.75f, 3.75f});
    const WeightGrid g = minmax_grid(W, fmt(4, true));
    EXPECT_EQ(g.scale[0], 0.5f);
    EXPECT_EQ(g.zero[0], 8.f);
    const QuantizedWeight q = round_to_grid(W, g);
    EXPECT_EQ(codes_of(q), (std::vector<int>{15, 15}));  // 7.5 -> 8 + 8 = 16 -> 15
    EXPECT_EQ(q.dequantize()[0], 3.5f);
  }
  {  // 8 bits: max|w| = 127.5 -> scale 1, zero 128; 5.5 -> 6.
    const Tensor W = matrix(1, 4, {127.5f, -127.5f, 5.5f, -100.f});
    const WeightGrid g = minmax_grid(W, fmt(8, true));
    EXPECT_EQ(g.scale[0], 1.f);
    EXPECT_EQ(g.zero[0], 128.f);
    EXPECT_EQ(codes_of(round_to_grid(W, g)), (std::vector<int>{255, 0, 134, 28}));
  }
}

TEST(WquantMinmax, GroupedRowsHaveOneGridPerGroup) {
  // Group 2: row 0 groups [-1, 2] (scale 1, zero 1) and [0, 3] (scale 1, zero 0);
  // row 1 groups [0.5, 1.5] (scale 0.5, zero 0) and [-3, 0] (scale 1, zero 3).
  const Tensor W = matrix(2, 4, {-1.f, 2.f, 0.f, 3.f, 0.5f, 1.5f, -3.f, 0.f});
  const WeightGrid g = minmax_grid(W, fmt(2, false, 2));
  EXPECT_EQ(g.scale, (std::vector<float>{1.f, 1.f, 0.5f, 1.f}));
  EXPECT_EQ(g.zero, (std::vector<float>{1.f, 0.f, 0.f, 3.f}));
  EXPECT_EQ(g.index(1, 3), 3);
  const QuantizedWeight q = round_to_grid(W, g);
  EXPECT_EQ(codes_of(q), (std::vector<int>{0, 3, 0, 3, 1, 3, 0, 3}));
  const Tensor back = q.dequantize();
  for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(back[i], W[i]) << i;  // every value sits on its grid
}

TEST(WquantMinmax, ConstantAndZeroRows) {
  // Constant row, asymmetric 3 bits: lo = 0, hi = 2, so 2 is the top code.
  const Tensor C = matrix(1, 4, {2.f, 2.f, 2.f, 2.f});
  const WeightGrid gc = minmax_grid(C, fmt(3, false));
  EXPECT_EQ(gc.scale[0], 2.f / 7.f);
  EXPECT_EQ(gc.zero[0], 0.f);
  EXPECT_EQ(codes_of(round_to_grid(C, gc)), (std::vector<int>{7, 7, 7, 7}));
  // Zero rows take the range [-1, 1] (scale 2 / maxq > 0) and dequantize to exactly 0.
  for (int bits : {2, 3, 4, 8})
    for (bool sym : {false, true}) {
      SCOPED_TRACE(::testing::Message() << bits << " bits, symmetric " << sym);
      const Tensor Z({2, 8});
      const WeightGrid g = minmax_grid(Z, fmt(bits, sym, 4));
      for (float s : g.scale) EXPECT_EQ(s, 2.f / static_cast<float>((1 << bits) - 1));
      const float half = static_cast<float>((1 << bits) - 1) / 2.f;
      for (float z : g.zero) EXPECT_TRUE(z == std::floor(half) || z == std::ceil(half)) << z;
      const Tensor back = round_to_grid(Z, g).dequantize();
      for (int64_t i = 0; i < back.numel(); ++i) EXPECT_EQ(back[i], 0.f);
    }
}

TEST(WquantMinmax, RoundToGridMatchesNearbyintReference) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t R = 7, C = 96;
  Tensor W({R, C});
  for (int64_t i = 0; i < W.numel(); ++i) W[i] = nd(rng);
  // Plant exact ties w/scale = k + 0.5 once the grid is known.
  for (int bits : {2, 3, 4, 8})
    for (bool sym : {false, true}) {
      const WeightGrid g = minmax_grid(W, fmt(bits, sym, 32));
      Tensor Wt = W.clone();
      for (int64_t r = 0; r < R; ++r) Wt[r * C + 5] = g.scale[g.index(r, 5)] * 1.5f;
      const QuantizedWeight q = round_to_grid(Wt, g);
      const float maxq = static_cast<float>((1 << bits) - 1);
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < C; ++c) {
          const int64_t k = g.index(r, c);
          const float want = std::clamp(std::nearbyint(Wt[r * C + c] / g.scale[k]) + g.zero[k], 0.f, maxq);
          ASSERT_EQ(q.codes[r * C + c], static_cast<int>(want)) << bits << " " << sym << " " << r << " " << c;
        }
    }
}

TEST(WquantMinmax, RejectsBadInput) {
  Tensor W({2, 6});
  testing::expect_error([&] { minmax_grid(W, fmt(9, false)); }, {"minmax_grid", "bits"});
  testing::expect_error([&] { minmax_grid(W, fmt(4, false, 4)); }, {"minmax_grid", "group size 4"});
  W[3] = std::numeric_limits<float>::quiet_NaN();
  testing::expect_error([&] { minmax_grid(W, fmt(4, false)); }, {"minmax_grid", "row 0", "non-finite"});
  const Tensor ok({2, 6});
  WeightGrid g = minmax_grid(ok, fmt(4, false));
  g.zero[1] = 2.5f;
  testing::expect_error([&] { round_to_grid(ok, g); }, {"round_to_grid", "zero 1", "integer"});
  g = minmax_grid(ok, fmt(4, false));
  testing::expect_error([&] { round_to_grid(Tensor({3, 6}), g); }, {"round_to_grid", "[3, 6]"});
}

// --- grid search against brute force ---

TEST(WquantGridSearch, ClipRatiosAreOneDownToOneHundredth) {
  const std::vector<float> r = clip_ratios({});
  ASSERT_EQ(r.size(), 100u);
  EXPECT_EQ(r.front(), 1.f);
  EXPECT_EQ(r[37], static_cast<float>(1.0 - 37 * static_cast<double>(0.01f)));
  EXPECT_NEAR(r.back(), 0.01f, 1e-6f);
  GridSearchOptions o;
  o.min_ratio = 0.5f;
  o.step = 0.1f;
  EXPECT_EQ(clip_ratios(o).size(), 6u);
  o.step = 0.f;
  testing::expect_error([&] { clip_ratios(o); }, {"step"});
}

// Random PSD H = 2 XᵀX / N of correlated inputs, damped.
Tensor random_hessian(int64_t cols, std::mt19937& rng, int64_t N = 64) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> X(static_cast<size_t>(N * cols));
  for (int64_t t = 0; t < N; ++t) {
    float common = nd(rng);
    for (int64_t c = 0; c < cols; ++c) X[t * cols + c] = 0.7f * common + nd(rng) * (1.f + 0.1f * c);
  }
  Tensor H({cols, cols});
  accumulate_xtx(H, X.data(), N, cols, 2.f / N);
  Tensor W0({1, cols});
  prepare_hessian(H, W0);
  return H;
}

// Δw H_block Δwᵀ of one row-group in double, or its diagonal version.
double block_score(const float* w, const float* H, int64_t ld, int64_t c0, int64_t b, float s, float z, float maxq,
                   bool diag_only) {
  std::vector<double> d(static_cast<size_t>(b));
  for (int64_t j = 0; j < b; ++j) {
    const float q = std::clamp(std::nearbyint(w[c0 + j] / s) + z, 0.f, maxq);
    d[j] = static_cast<double>(s * (q - z) - w[c0 + j]);
  }
  double total = 0;
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = 0; j < b; ++j)
      if (!diag_only || i == j) total += d[i] * H[(c0 + i) * ld + c0 + j] * d[j];
  return total;
}

struct Brute {
  double best = std::numeric_limits<double>::infinity(), second = best;
  float scale = 0, zero = 0;
};

// Every candidate of METHODS §4 step 2, computed independently of the implementation.
Brute brute_force(const Tensor& W, const float* H, int64_t r, int64_t g, const WeightFormat& f, bool diag_only) {
  const int64_t C = W.dim(1), b = f.group ? f.group : C, c0 = g * b;
  const float maxq = static_cast<float>((1 << f.bits) - 1);
  float lo = 0, hi = 0;
  for (int64_t j = 0; j < b; ++j) {
    lo = std::min(lo, W[r * C + c0 + j]);
    hi = std::max(hi, W[r * C + c0 + j]);
  }
  if (f.symmetric) {
    hi = std::max(-lo, hi);
    lo = -hi;
  }
  Brute out;
  for (int k = 0; k < 100; ++k) {
    const float p = static_cast<float>(1.0 - k * static_cast<double>(0.01f));
    const float s = (hi * p - lo * p) / maxq;
    std::vector<float> zeros;
    if (f.symmetric) {
      zeros = {static_cast<float>(1 << (f.bits - 1))};
    } else {
      const float t = -(lo * p) / s;
      zeros = {std::clamp(std::floor(t), 0.f, maxq), std::clamp(std::ceil(t), 0.f, maxq)};
    }
    for (float z : zeros) {
      const double sc = block_score(W.data() + r * C, H, C, c0, b, s, z, maxq, diag_only);
      if (sc < out.best) {
        out.second = out.best;
        out.best = sc;
        out.scale = s;
        out.zero = z;
      } else if (sc > out.best && sc < out.second) {
        out.second = sc;
      }
    }
  }
  return out;
}

void expect_matches_brute_force(const Tensor& W, const Tensor& H, const WeightFormat& f, const WeightGrid& g,
                                bool diag_only) {
  const int64_t R = W.dim(0), C = W.dim(1), G = f.groups_per_row(C), b = C / G;
  const float maxq = static_cast<float>((1 << f.bits) - 1);
  int exact = 0;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t gi = 0; gi < G; ++gi) {
      const Brute bf = brute_force(W, H.data(), r, gi, f, diag_only);
      const int64_t k = r * G + gi;
      const double got = block_score(W.data() + r * C, H.data(), C, gi * b, b, g.scale[k], g.zero[k], maxq, diag_only);
      EXPECT_NEAR(got, bf.best, 1e-5 * bf.best + 1e-12) << "row " << r << " group " << gi;
      if (bf.second > bf.best * (1 + 1e-4)) {  // a clear winner: the same grid exactly
        EXPECT_EQ(g.scale[k], bf.scale) << "row " << r << " group " << gi;
        EXPECT_EQ(g.zero[k], bf.zero) << "row " << r << " group " << gi;
        ++exact;
      }
    }
  EXPECT_GT(exact, R * G / 2);  // the comparison must mostly be exact to mean anything
}

Tensor random_weights(int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::student_t_distribution<float> heavy(3.f);
  Tensor W({rows, cols});
  for (int64_t i = 0; i < W.numel(); ++i) W[i] = 0.5f * nd(rng) + 0.1f * heavy(rng) + (i % 3 == 0 ? 0.2f : 0.f);
  return W;
}

TEST(WquantGridSearch, MatchesBruteForceExactScore) {
  std::mt19937 rng(11);
  const Tensor W = random_weights(6, 24, rng);
  const Tensor H = random_hessian(24, rng);
  for (const WeightFormat& f : {fmt(3, false), fmt(2, false), fmt(4, true), fmt(3, false, 8), fmt(3, true, 8)}) {
    SCOPED_TRACE(::testing::Message() << f.bits << " bits, sym " << f.symmetric << ", group " << f.group);
    expect_matches_brute_force(W, H, f, search_grid(W, H, f), false);
  }
}

TEST(WquantGridSearch, MatchesBruteForceDiagonalScoreAboveWidthLimit) {
  std::mt19937 rng(12);
  const Tensor W = random_weights(6, 24, rng);
  const Tensor H = random_hessian(24, rng);
  GridSearchOptions o;
  o.full_h_max_width = 16;  // 24 columns per row: diag(H); groups of 8: still exact
  expect_matches_brute_force(W, H, fmt(3, false), search_grid(W, H, fmt(3, false), o), true);
  expect_matches_brute_force(W, H, fmt(3, false, 8), search_grid(W, H, fmt(3, false, 8), o), false);
}

TEST(WquantGridSearch, MseGridIsTheSearchWithIdentity) {
  std::mt19937 rng(13);
  const Tensor W = random_weights(5, 32, rng);
  Tensor I({32, 32});
  for (int64_t j = 0; j < 32; ++j) I[j * 32 + j] = 1.f;
  for (const WeightFormat& f : {fmt(2, false), fmt(4, true, 16)}) {
    const WeightGrid g = mse_grid(W, f);
    expect_matches_brute_force(W, I, f, g, false);
    const WeightGrid s = search_grid(W, I, f);
    EXPECT_EQ(g.scale, s.scale);
    EXPECT_EQ(g.zero, s.zero);
  }
}

TEST(WquantGridSearch, NeverWorseThanMinmaxAndUsuallyBetter) {
  std::mt19937 rng(14);
  const Tensor W = random_weights(40, 64, rng);
  const Tensor H = random_hessian(64, rng, 256);
  Objective obj;
  obj.H = {H};
  for (int bits : {2, 3, 4}) {
    const WeightFormat f = fmt(bits, false);
    const double mm = obj.evaluate(W, round_to_grid(W, minmax_grid(W, f)).dequantize());
    const double gs = obj.evaluate(W, round_to_grid(W, search_grid(W, H, f)).dequantize());
    EXPECT_LE(gs, mm * (1 + 1e-6)) << bits;
    EXPECT_LT(gs, 0.95 * mm) << bits;  // clipping pays off on heavy-tailed rows
  }
}

TEST(WquantGridSearch, TiesKeepTheLargestRatio) {
  // A zero row scores 0 for every candidate: the ratio-1 min-max grid must survive.
  Tensor W({2, 8});
  for (int64_t c = 0; c < 8; ++c) W[8 + c] = 0.1f * (c - 3);
  std::mt19937 rng(15);
  const Tensor H = random_hessian(8, rng);
  const WeightGrid g = search_grid(W, H, fmt(3, false));
  EXPECT_EQ(g.scale[0], 2.f / 7.f);
  EXPECT_EQ(g.zero[0], std::floor(1.f / (2.f / 7.f)));  // floor before ceil
}

TEST(WquantGridSearch, SameResultForAnyThreadCount) {
  std::mt19937 rng(16);
  const Tensor W = random_weights(300, 96, rng);
  const Tensor H = random_hessian(96, rng);
  const int saved = omp_get_max_threads();
  std::vector<WeightGrid> runs;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    runs.push_back(search_grid(W, H, fmt(3, false)));
    runs.push_back(search_grid(W, H, fmt(4, true, 32)));
  }
  omp_set_num_threads(saved);
  for (size_t i = 2; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].scale, runs[i % 2].scale) << i;
    EXPECT_EQ(runs[i].zero, runs[i % 2].zero) << i;
  }
}

// --- Hessian helpers ---

TEST(WquantHessian, AccumulateXtxMatchesDoubleReferenceAndIsSymmetric) {
  std::mt19937 rng(21);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t N = 37, C = 300;  // two column blocks, the second narrower
  std::vector<float> X(static_cast<size_t>(N * C));
  for (float& x : X) x = nd(rng);
  Tensor H({C, C});
  H[1] = 0.5f;  // accumulates on top of what is there
  H[C] = 0.5f;
  accumulate_xtx(H, X.data(), N, C, 0.25f);
  for (int64_t i = 0; i < C; ++i)
    for (int64_t j = 0; j < C; ++j) {
      double want = (i * C + j == 1 || i * C + j == C) ? 0.5 : 0.0;
      for (int64_t t = 0; t < N; ++t) want += 0.25 * X[t * C + i] * X[t * C + j];
      ASSERT_NEAR(H[i * C + j], want, 1e-4) << i << " " << j;
      ASSERT_EQ(H[i * C + j], H[j * C + i]);
    }
  testing::expect_error([&] { accumulate_xtx(H, X.data(), N, C + 1, 1.f); }, {"accumulate_xtx", "[301, 301]"});
}

TEST(WquantHessian, AccumulateXtxSameForAnyThreadCount) {
  std::mt19937 rng(22);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t N = 200, C = 600;
  std::vector<float> X(static_cast<size_t>(N * C));
  for (float& x : X) x = nd(rng);
  const int saved = omp_get_max_threads();
  std::vector<Tensor> runs;
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    Tensor H({C, C});
    accumulate_xtx(H, X.data(), N, C, 1.f / N);
    runs.push_back(std::move(H));
  }
  omp_set_num_threads(saved);
  for (int64_t i = 0; i < C * C; ++i) ASSERT_EQ(runs[0][i], runs[1][i]) << i;
}

TEST(WquantHessian, PrepareZeroesDeadInputsAndDamps) {
  // Input 2 never fired: its row and column of H are 0.
  Tensor H = matrix(4, 4, {4.f, 1.f, 0.f, 0.5f,  //
                           1.f, 2.f, 0.f, 0.f,   //
                           0.f, 0.f, 0.f, 0.f,   //
                           0.5f, 0.f, 0.f, 1.f});
  Tensor W = matrix(2, 4, {1.f, 2.f, 3.f, 4.f, -1.f, -2.f, -3.f, -4.f});
  const HessianReport rep = prepare_hessian(H, W, 0.01);
  EXPECT_EQ(rep.dead_inputs, 1);
  EXPECT_FLOAT_EQ(rep.damp, 0.01f * (4.f + 2.f + 1.f + 1.f) / 4.f);  // mean taken after H[2][2] = 1
  EXPECT_EQ(H[0], 4.f + rep.damp);
  EXPECT_EQ(H[5], 2.f + rep.damp);
  EXPECT_EQ(H[10], 1.f + rep.damp);
  EXPECT_EQ(H[15], 1.f + rep.damp);
  EXPECT_EQ(H[1], 1.f);  // off-diagonal untouched
  EXPECT_EQ(H[3], 0.5f);
  EXPECT_EQ(W[2], 0.f);
  EXPECT_EQ(W[6], 0.f);
  EXPECT_EQ(W[0], 1.f);
  EXPECT_EQ(W[7], -4.f);

  Tensor bad = matrix(2, 2, {1.f, 0.f, 0.f, -1.f});
  Tensor W2({1, 2});
  testing::expect_error([&] { prepare_hessian(bad, W2); }, {"prepare_hessian", "H[1][1]"});
  testing::expect_error([&] { prepare_hessian(H, W2); }, {"prepare_hessian", "[2, 2]"});
}

}  // namespace
}  // namespace tquant::wq
