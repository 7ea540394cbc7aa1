// Every backward pass against central finite differences of its forward (kernels/ops.h), in
// double precision where the forward is simple enough to restate, else in float with steps
// large enough that rounding stays far below the tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "core/counter_rng.h"
#include "kernels/ops.h"
#include "train/attention_grads.h"
#include "train/layer_grads.h"
#include "train/losses.h"

namespace tquant::train {
namespace {

std::vector<float> randn(size_t n, uint64_t seed, float scale = 1.f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * counter_normal(seed, i);
  return v;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// Checks the analytic gradient `g` of L at `x` by central differences along every coordinate.
// L is evaluated with float forwards; h and the tolerance are set per test.
void expect_matches_fd(std::vector<float>& x, const std::vector<float>& g, const std::function<double()>& L, float h,
                       double rel_tol, const char* what) {
  double gmax = 0;
  for (float v : g) gmax = std::max(gmax, std::abs(static_cast<double>(v)));
  ASSERT_GT(gmax, 0) << what << ": the gradient is identically zero";
  for (size_t i = 0; i < x.size(); ++i) {
    const float saved = x[i];
    x[i] = saved + h;
    const double up = L();
    x[i] = saved - h;
    const double down = L();
    x[i] = saved;
    const double fd = (up - down) / (2.0 * h);
    EXPECT_NEAR(g[i], fd, rel_tol * gmax) << what << " coordinate " << i;
  }
}

constexpr int64_t R = 5;  // rows

TEST(TrainLayerGrads, LinearInputWeightAndBias) {
  const int64_t in = 7, out = 6;
  std::vector<float> x = randn(R * in, 1), w = randn(out * in, 2, 0.5f), b = randn(out, 3), r = randn(R * out, 4);
  auto L = [&] {
    std::vector<float> y(R * out);
    linear_forward(x.data(), R, in, w.data(), b.data(), out, y.data());
    return dot(y, r);
  };
  std::vector<float> dx(R * in), dw(out * in, 0.f), db(out, 0.f);
  linear_backward(x.data(), R, in, w.data(), out, r.data(), dx.data(), false, dw.data(), db.data());
  expect_matches_fd(x, dx, L, 1e-2f, 1e-3, "dx");
  expect_matches_fd(w, dw, L, 1e-2f, 1e-3, "dW");
  expect_matches_fd(b, db, L, 1e-2f, 1e-3, "db");
  // Parameter gradients accumulate; dx is added to with accumulate_dx.
  std::vector<float> dx2 = dx;
  linear_backward(x.data(), R, in, w.data(), out, r.data(), dx2.data(), true, dw.data(), nullptr);
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_FLOAT_EQ(dx2[i], 2 * dx[i]);
}

TEST(TrainLayerGrads, LayerNorm) {
  const int64_t d = 9;
  std::vector<float> x = randn(R * d, 5), gamma = randn(d, 6), beta = randn(d, 7), r = randn(R * d, 8);
  for (int64_t i = 0; i < R * d; i += d) x[i] += 3.f;  // an offset row, as outliers make
  auto L = [&] {
    std::vector<float> y(R * d);
    layer_norm(x.data(), R, d, gamma.data(), beta.data(), 1e-5f, y.data());
    return dot(y, r);
  };
  std::vector<float> y(R * d), mean(R), rstd(R), dx(R * d), dg(d, 0.f), db(d, 0.f);
  layer_norm(x.data(), R, d, gamma.data(), beta.data(), 1e-5f, y.data(), mean.data(), rstd.data());
  layer_norm_backward(x.data(), mean.data(), rstd.data(), R, d, gamma.data(), r.data(), dx.data(), false, dg.data(),
                      db.data());
  expect_matches_fd(x, dx, L, 1e-2f, 2e-3, "dx");
  expect_matches_fd(gamma, dg, L, 1e-2f, 1e-3, "dgamma");
  expect_matches_fd(beta, db, L, 1e-2f, 1e-3, "dbeta");
}

TEST(TrainLayerGrads, RmsNorm) {
  const int64_t d = 8;
  std::vector<float> x = randn(R * d, 9), gamma = randn(d, 10), r = randn(R * d, 11);
  auto L = [&] {
    std::vector<float> y(R * d);
    rms_norm(x.data(), R, d, gamma.data(), 1e-6f, y.data());
    return dot(y, r);
  };
  std::vector<float> y(R * d), rstd(R), dx(R * d), dg(d, 0.f);
  rms_norm(x.data(), R, d, gamma.data(), 1e-6f, y.data(), rstd.data());
  rms_norm_backward(x.data(), rstd.data(), R, d, gamma.data(), r.data(), dx.data(), false, dg.data());
  expect_matches_fd(x, dx, L, 1e-2f, 2e-3, "dx");
  expect_matches_fd(gamma, dg, L, 1e-2f, 1e-3, "dgamma");
}

TEST(TrainLayerGrads, Activations) {
  const int64_t n = 40;
  for (Activation a : {Activation::GeLU, Activation::GeLUTanh, Activation::SiLU, Activation::ReLU}) {
    std::vector<float> x = randn(n, 12, 2.f), r = randn(n, 13);
    for (float& v : x)
      if (std::abs(v) < 0.05f) v = 0.3f;  // keep ReLU's kink out of the stencil
    auto L = [&] {
      std::vector<float> y = x;
      switch (a) {
        case Activation::GeLU: gelu_erf(y.data(), n); break;
        case Activation::GeLUTanh: gelu_tanh(y.data(), n); break;
        case Activation::SiLU: silu(y.data(), n); break;
        case Activation::ReLU: relu(y.data(), n); break;
      }
      return dot(y, r);
    };
    std::vector<float> dx(n);
    activation_backward(a, x.data(), r.data(), dx.data(), n);
    expect_matches_fd(x, dx, L, 1e-2f, 2e-3, "activation");
  }
}

TEST(TrainLayerGrads, Tanh) {
  const int64_t n = 30;
  std::vector<float> x = randn(n, 14), r = randn(n, 15);
  auto L = [&] {
    std::vector<float> y = x;
    tanh_inplace(y.data(), n);
    return dot(y, r);
  };
  std::vector<float> y = x, dx(n);
  tanh_inplace(y.data(), n);
  tanh_backward(y.data(), r.data(), dx.data(), n);
  expect_matches_fd(x, dx, L, 1e-2f, 1e-3, "tanh");
}

TEST(TrainLayerGrads, RopeBackwardIsTheTranspose) {
  const int64_t B = 2, T = 5, H = 3, dh = 8, n = B * T * H * dh;
  std::vector<float> x = randn(n, 16), y = randn(n, 17);
  std::vector<float> rx = x, ry = y;
  rope_inplace(rx.data(), B, T, H, dh, 10000.f);
  rope_backward_inplace(ry.data(), B, T, H, dh, 10000.f);
  // <R x, y> = <x, Rᵀ y>
  EXPECT_NEAR(dot(rx, y), dot(x, ry), 1e-4 * std::sqrt(dot(x, x) * dot(y, y)));
  // and Rᵀ R = I (a rotation)
  rope_backward_inplace(rx.data(), B, T, H, dh, 10000.f);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(rx[i], x[i], 1e-5f);
}

TEST(TrainLayerGrads, DropoutMaskIsItsOwnBackward) {
  const int64_t n = 20000;
  std::vector<float> ones(n, 1.f);
  dropout_inplace(ones.data(), n, 0.25f, 77);
  int64_t dropped = 0;
  for (float v : ones) {
    if (v == 0.f) ++dropped;
    else EXPECT_FLOAT_EQ(v, 1.f / 0.75f);
  }
  EXPECT_NEAR(static_cast<double>(dropped) / n, 0.25, 0.015);
  // The same key drops the same positions; another key others.
  std::vector<float> again(n, 1.f), other(n, 1.f);
  dropout_inplace(again.data(), n, 0.25f, 77);
  dropout_inplace(other.data(), n, 0.25f, 78);
  EXPECT_EQ(again, ones);
  EXPECT_NE(other, ones);
}

TEST(TrainLayerGrads, EmbeddingScatterAddsRowsSharingAnIndex) {
  const int64_t d = 70;  // spans more than one column block
  const std::vector<int32_t> index = {2, 0, 2, 1};
  std::vector<float> dy = randn(4 * d, 18), table(3 * d, 0.f);
  embedding_backward(index.data(), 4, d, dy.data(), table.data());
  for (int64_t j = 0; j < d; ++j) {
    EXPECT_FLOAT_EQ(table[0 * d + j], dy[1 * d + j]);
    EXPECT_FLOAT_EQ(table[1 * d + j], dy[3 * d + j]);
    EXPECT_FLOAT_EQ(table[2 * d + j], dy[0 * d + j] + dy[2 * d + j]);
  }
}

void attention_case(bool causal, int64_t heads, int64_t kv_heads, float dropout) {
  const int64_t B = 2, T = 5, dh = 4;
  const std::vector<int32_t> lengths = {5, 3};
  AttentionShape s{B, T, heads, kv_heads, dh, causal, lengths.data()};
  std::vector<float> q = randn(B * T * heads * dh, 19), k = randn(B * T * kv_heads * dh, 20),
                     v = randn(B * T * kv_heads * dh, 21), r = randn(B * T * heads * dh, 22);
  // Padded query rows carry no loss, as in training.
  for (int64_t t = lengths[1]; t < T; ++t)
    for (int64_t j = 0; j < heads * dh; ++j) r[(T + t) * heads * dh + j] = 0.f;
  std::vector<float> probs(B * heads * T * T), ctx(B * T * heads * dh);
  auto L = [&] {
    attention_forward(s, q.data(), k.data(), v.data(), probs.data(), ctx.data(), dropout, 99);
    return dot(ctx, r);
  };
  L();
  std::vector<float> dq(q.size()), dk(k.size()), dv(v.size());
  attention_backward(s, q.data(), k.data(), v.data(), probs.data(), r.data(), dq.data(), dk.data(), dv.data(), dropout,
                     99);
  expect_matches_fd(q, dq, L, 1e-2f, 2e-3, "dq");
  expect_matches_fd(k, dk, L, 1e-2f, 2e-3, "dk");
  expect_matches_fd(v, dv, L, 1e-2f, 2e-3, "dv");
  // Keys past a sequence's length get no gradient.
  for (int64_t t = lengths[1]; t < T; ++t)
    for (int64_t j = 0; j < kv_heads * dh; ++j) {
      EXPECT_EQ(dk[(T + t) * kv_heads * dh + j], 0.f);
      EXPECT_EQ(dv[(T + t) * kv_heads * dh + j], 0.f);
    }
}

TEST(TrainLayerGrads, AttentionBidirectionalWithPadding) { attention_case(false, 2, 2, 0.f); }
TEST(TrainLayerGrads, AttentionCausalGroupedQuery) { attention_case(true, 4, 2, 0.f); }
TEST(TrainLayerGrads, AttentionWithDropout) { attention_case(false, 2, 1, 0.3f); }

TEST(TrainLayerGrads, CrossEntropyMatchesClosedFormAndFiniteDifferences) {
  const int64_t rows = 3, classes = 4;
  std::vector<float> logits = {1.f, 2.f, 3.f, 4.f, 0.f, 0.f, 0.f, 0.f, -1.f, 5.f, 2.f, 0.5f};
  const std::vector<int32_t> labels = {3, 1, 0};
  std::vector<float> d(rows * classes);
  const LossSum s = cross_entropy(logits.data(), rows, classes, labels.data(), 0.5f, d.data());
  // Row 2 of the batch: uniform logits → loss log 4.
  double expect = 0;
  expect += std::log(std::exp(1.) + std::exp(2.) + std::exp(3.) + std::exp(4.)) - 4.;
  expect += std::log(4.);
  expect += std::log(std::exp(-1.) + std::exp(5.) + std::exp(2.) + std::exp(.5)) + 1.;
  EXPECT_NEAR(s.loss, expect, 1e-5);
  EXPECT_EQ(s.count, 3);
  EXPECT_EQ(s.correct, 1);  // row 0 predicts 3 = label; row 1 ties to class 0 ≠ 1; row 2 predicts 1 ≠ 0
  auto L = [&] { return 0.5 * cross_entropy(logits.data(), rows, classes, labels.data(), 0.f, nullptr).loss; };
  expect_matches_fd(logits, d, L, 1e-2f, 1e-3, "dlogits");
}

TEST(TrainLayerGrads, SquaredError) {
  std::vector<float> pred = {1.f, -2.f}, target = {0.5f, 1.f}, d(2);
  const LossSum s = squared_error(pred.data(), 2, target.data(), 1.f, d.data());
  EXPECT_DOUBLE_EQ(s.loss, 0.25 + 9.0);
  EXPECT_FLOAT_EQ(d[0], 1.f);
  EXPECT_FLOAT_EQ(d[1], -6.f);
}

}  // namespace
}  // namespace tquant::train
