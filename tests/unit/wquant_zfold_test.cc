// Z-Fold (METHODS.md §4 step 3): the least-squares zeta against a hand computation, the folding
// identities (W' = W / zeta on its grid times zeta equals the QuantizedWeight with zeta set; the
// objective of W' under H' = diag(zeta) H diag(zeta) equals that of W under H), the result never
// worse than plain search_grid and better when the matrices share column scales, learned
// rounding on the folded problem, and thread-count independence.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "expect_error.h"
#include "wquant_test_data.h"
#include "wquant/grid_search.h"
#include "wquant/learned_rounding.h"
#include "wquant/weight_quant.h"
#include "wquant/zfold.h"

namespace tquant::wq {
namespace {

using testdata::random_matrix;

using testing::expect_error;

Tensor matrix(int64_t R, int64_t C, std::vector<float> v) {
  Tensor t({R, C});
  std::copy(v.begin(), v.end(), t.data());
  return t;
}

Tensor correlated_hessian(int64_t C, std::mt19937& rng, int64_t N = 256) {
  return testdata::correlated_hessian(C, rng, N, 0.5f, 0.5f);
}

// Matrices that read the same input and share a per-column magnitude (the situation Z-Fold is
// for: the preceding norm's gamma scales the same input columns for Q, K and V).
std::vector<Tensor> shared_column_scale_weights(int n, int64_t R, int64_t C, std::mt19937& rng) {
  std::uniform_real_distribution<float> ud(-0.6f, 0.6f);
  std::vector<float> col(static_cast<size_t>(C));
  for (auto& c : col) c = std::pow(10.f, ud(rng));
  std::vector<Tensor> ws;
  for (int k = 0; k < n; ++k) {
    Tensor W = random_matrix(R, C, rng, 0.05f);
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < C; ++c) W[r * C + c] *= col[c];
    ws.push_back(W);
  }
  return ws;
}

std::vector<const Tensor*> ptrs(const std::vector<Tensor>& ws) {
  std::vector<const Tensor*> p;
  for (const Tensor& w : ws) p.push_back(&w);
  return p;
}

TEST(ZetaLeastSquares, HandComputed2x3) {
  // W = [[1, 2, 0.5], [3, -1, 1]]; grid scale 0.5 (row 0) and 1 (row 1), zero 2, 3 bits.
  // codes row 0 [5, 6, 1] -> W^ = 0.5 * [3, 4, -1] = [1.5, 2, -0.5]
  // codes row 1 [4, 0, 2] -> W^ = [2, -2, 0]
  // zeta_0 = (1.5*1 + 2*3) / (1.5^2 + 2^2)         = 7.5 / 6.25 = 1.2
  // zeta_1 = (2*2 + (-2)*(-1)) / (2^2 + (-2)^2)    = 6 / 8      = 0.75
  // zeta_2 = (-0.5*0.5 + 0*1) / (0.25 + 0)          = -1 -> not > 0 -> 1
  const Tensor W = matrix(2, 3, {1.f, 2.f, 0.5f, 3.f, -1.f, 1.f});
  QuantizedWeight q;
  q.grid.format.bits = 3;
  q.grid.rows = 2;
  q.grid.cols = 3;
  q.grid.scale = {0.5f, 1.f};
  q.grid.zero = {2.f, 2.f};
  q.codes = {5, 6, 1, 4, 0, 2};
  q.zeta = {7.f, 7.f, 7.f};  // ignored: W^ is scale * (q - zero) without zeta
  const std::vector<float> z = zeta_least_squares({&W}, {q});
  ASSERT_EQ(z.size(), 3u);
  EXPECT_FLOAT_EQ(z[0], 1.2f);
  EXPECT_FLOAT_EQ(z[1], 0.75f);
  EXPECT_EQ(z[2], 1.f);

  // Over all rows of ALL matrices: the same rows split into two 1x3 matrices give the same zeta.
  const Tensor W0 = matrix(1, 3, {1.f, 2.f, 0.5f}), W1 = matrix(1, 3, {3.f, -1.f, 1.f});
  QuantizedWeight q0 = q, q1 = q;
  q0.grid.rows = q1.grid.rows = 1;
  q0.grid.scale = {0.5f};
  q1.grid.scale = {1.f};
  q0.grid.zero = q1.grid.zero = {2.f};
  q0.codes = {5, 6, 1};
  q1.codes = {4, 0, 2};
  const std::vector<float> z2 = zeta_least_squares({&W0, &W1}, {q0, q1});
  EXPECT_EQ(z2, z);

  // A column whose codes all dequantize to 0 (dead input): 0/0 -> 1.
  QuantizedWeight d = q;
  d.codes = {2, 6, 1, 2, 0, 2};
  EXPECT_EQ(zeta_least_squares({&W}, {d})[0], 1.f);
}

TEST(ZFold, FoldingIdentities) {
  std::mt19937 rng(7);
  const int64_t R = 12, C = 16;
  const std::vector<Tensor> ws = shared_column_scale_weights(3, R, C, rng);
  const Tensor H = correlated_hessian(C, rng);
  WeightFormat f;
  f.bits = 3;
  const ZFoldResult z = zfold(ptrs(ws), H, f);
  ASSERT_EQ(z.zeta.size(), static_cast<size_t>(C));
  ASSERT_EQ(z.grids.size(), ws.size());
  ASSERT_GT(z.rounds, 0);
  const Tensor Hf = fold_hessian(H, z.zeta);
  Objective obj, objf;
  obj.H = {H};
  objf.H = {Hf};
  double total = 0;
  for (size_t k = 0; k < ws.size(); ++k) {
    const Tensor Wf = fold_weight(ws[k], z.zeta);
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < C; ++c) EXPECT_FLOAT_EQ(Wf[r * C + c] * z.zeta[c], ws[k][r * C + c]);
    const QuantizedWeight folded = round_to_grid(Wf, z.grids[k]);
    QuantizedWeight with_zeta = folded;
    with_zeta.zeta = z.zeta;
    // dequantize(W' codes) diag(zeta) == the QuantizedWeight with zeta set, bit for bit.
    const Tensor a = folded.dequantize(), b = with_zeta.dequantize();
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < C; ++c) EXPECT_EQ(a[r * C + c] * z.zeta[c], b[r * C + c]);
    // tr(dW' H' dW'^T) == tr(dW H dW^T).
    const double fo = obj.evaluate(ws[k], b), ff = objf.evaluate(Wf, a);
    EXPECT_NEAR(fo, ff, 1e-4 * fo);
    total += fo;
  }
  EXPECT_NEAR(z.objective, total, 1e-4 * total);
}

TEST(ZFold, NeverWorseThanPlainGridSearchAndBetterWithSharedColumnScales) {
  for (int bits : {2, 3, 4}) {
    for (unsigned seed : {1u, 2u}) {
      std::mt19937 rng(seed * 10 + bits);
      const int64_t R = 16, C = 32;
      const std::vector<Tensor> ws = shared_column_scale_weights(3, R, C, rng);
      const Tensor H = correlated_hessian(C, rng);
      WeightFormat f;
      f.bits = bits;
      Objective obj;
      obj.H = {H};
      double plain = 0;
      for (const Tensor& W : ws) plain += obj.evaluate(W, round_to_grid(W, search_grid(W, H, f)).dequantize());
      const ZFoldResult z = zfold(ptrs(ws), H, f);
      EXPECT_NEAR(z.objective_initial, plain, 1e-4 * plain);
      EXPECT_LE(z.objective, z.objective_initial);
      EXPECT_LT(z.objective, plain) << "bits " << bits << " seed " << seed;
      EXPECT_GE(z.rounds, 1);
      EXPECT_LE(z.rounds, 30);
      for (float v : z.zeta) EXPECT_TRUE(std::isfinite(v) && v > 0.f);
      // No rounds: zeta = 1 and the plain grids.
      const ZFoldResult z0 = zfold(ptrs(ws), H, f, 0);
      EXPECT_EQ(z0.rounds, 0);
      EXPECT_TRUE(std::all_of(z0.zeta.begin(), z0.zeta.end(), [](float v) { return v == 1.f; }));
      EXPECT_EQ(z0.objective, z0.objective_initial);
      for (size_t k = 0; k < ws.size(); ++k) EXPECT_EQ(z0.grids[k].scale, search_grid(ws[k], H, f).scale);
    }
  }
}

TEST(ZFold, GroupedAndSymmetricFormats) {
  std::mt19937 rng(31);
  const int64_t R = 8, C = 32;
  const std::vector<Tensor> ws = shared_column_scale_weights(2, R, C, rng);
  const Tensor H = correlated_hessian(C, rng);
  for (const WeightFormat& f : {WeightFormat{3, false, 16}, WeightFormat{4, true, 0}}) {
    const ZFoldResult z = zfold(ptrs(ws), H, f);
    EXPECT_LE(z.objective, z.objective_initial);
    for (const WeightGrid& g : z.grids) EXPECT_EQ(g.scale.size(), static_cast<size_t>(R * f.groups_per_row(C)));
  }
}

TEST(ZFold, DeadColumnKeepsZetaOne) {
  std::mt19937 rng(9);
  const int64_t R = 16, C = 32;
  std::vector<Tensor> ws = shared_column_scale_weights(3, R, C, rng);
  for (Tensor& W : ws)
    for (int64_t r = 0; r < R; ++r) W[r * C + 5] = 0.f;  // prepare_hessian zeroes dead inputs
  const Tensor H = correlated_hessian(C, rng);
  WeightFormat f;
  f.bits = 3;
  const ZFoldResult z = zfold(ptrs(ws), H, f);
  ASSERT_GT(z.rounds, 0);
  EXPECT_EQ(z.zeta[5], 1.f);
}

TEST(ZFold, LearnedRoundingOnTheFoldedProblem) {
  // The contract of zfold.h: GPTQ / learned rounding run on W' and H' with the returned grids.
  std::mt19937 rng(12);
  const int64_t R = 16, C = 24;
  const std::vector<Tensor> ws = shared_column_scale_weights(3, R, C, rng);
  const Tensor H = correlated_hessian(C, rng);
  WeightFormat f;
  f.bits = 3;
  const ZFoldResult z = zfold(ptrs(ws), H, f);
  Objective objf;
  objf.H = {fold_hessian(H, z.zeta)};
  Objective obj;
  obj.H = {H};
  RoundingOptions o = aespa_defaults(true);
  o.iters = 500;
  o.init = RoundingInit::kFractional;
  double total = 0;
  for (size_t k = 0; k < ws.size(); ++k) {
    const Tensor Wf = fold_weight(ws[k], z.zeta);
    const RoundingResult res = learn_rounding(Wf, objf, round_to_grid(Wf, z.grids[k]), o);
    QuantizedWeight unfolded = res.weight;
    unfolded.zeta = z.zeta;
    total += obj.evaluate(ws[k], unfolded.dequantize());
    EXPECT_NEAR(res.objective_final, obj.evaluate(ws[k], unfolded.dequantize()), 1e-3 * res.objective_final);
  }
  EXPECT_LT(total, z.objective);
}

TEST(ZFold, DeterministicAcrossThreadCounts) {
  std::mt19937 rng(13);
  const int64_t R = 300, C = 40;  // more than two 128-row tiles
  const std::vector<Tensor> ws = shared_column_scale_weights(2, R, C, rng);
  const Tensor H = correlated_hessian(C, rng, 128);
  WeightFormat f;
  f.bits = 3;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const ZFoldResult a = zfold(ptrs(ws), H, f, 8);
  omp_set_num_threads(2);
  const ZFoldResult b = zfold(ptrs(ws), H, f, 8);
  omp_set_num_threads(saved);
  EXPECT_EQ(a.zeta, b.zeta);
  EXPECT_EQ(a.rounds, b.rounds);
  EXPECT_GT(a.rounds, 0);
  EXPECT_EQ(std::memcmp(&a.objective, &b.objective, sizeof(double)), 0);
  for (size_t k = 0; k < ws.size(); ++k) {
    EXPECT_EQ(a.grids[k].scale, b.grids[k].scale);
    EXPECT_EQ(a.grids[k].zero, b.grids[k].zero);
  }
}

TEST(ZFold, RejectsMismatchedInputs) {
  std::mt19937 rng(1);
  const Tensor A = random_matrix(4, 6, rng), B = random_matrix(4, 5, rng);
  const Tensor H = correlated_hessian(6, rng, 32);
  WeightFormat f;
  expect_error([&] { zfold({&A, &B}, H, f); }, {"zfold", "weight 1", "[4, 5]"});
  expect_error([&] { zfold({}, H, f); }, {"zfold", "no weights"});
  const Tensor H5 = correlated_hessian(5, rng, 32);
  expect_error([&] { zfold({&A}, H5, f); }, {"zfold", "H", "[6, 6]"});
  WeightFormat g;
  g.group = 4;
  expect_error([&] { zfold({&A}, H, g); }, {"zfold", "group"});
}

}  // namespace
}  // namespace tquant::wq
