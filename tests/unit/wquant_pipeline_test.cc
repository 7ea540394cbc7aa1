// The block-wise pipeline on the default model: statistics against direct measurement, every
// method against RTN, and thread-count determinism.
#include "wquant/pipeline.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "core/threads.h"
#include "wquant/block_stats.h"
#include "test_paths.h"

namespace tquant::wq {
namespace {

std::vector<Batch> calibration(int windows, int length, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_int_distribution<int32_t> id(3, 2047);
  std::vector<Batch> out;
  for (int w = 0; w < windows; w += 2) {
    Batch b;
    b.batch = 2;
    b.seq = length;
    for (int i = 0; i < 2 * length; ++i) b.ids.push_back(id(rng));
    b.lengths = {length, length - 7};  // one padded sequence: padding must not count
    out.push_back(std::move(b));
  }
  return out;
}

// Records copies of the named points of one block.
class Recorder : public Hook {
 public:
  explicit Recorder(std::vector<std::string> points) : points_(std::move(points)) {}
  void on_activation(const std::string& point, Tensor& x, const BatchInfo&) override {
    for (const auto& p : points_)
      if (p == point) seen[point] = x.clone();
  }
  std::map<std::string, Tensor> seen;

 private:
  std::vector<std::string> points_;
};

TEST(BlockStats, MatchNaiveSumsOverUnpaddedTokens) {
  const Model m = Model::load(testing::default_model());
  const auto batches = calibration(2, 24, 1);
  const Batch& b = batches[0];
  const ModelConfig& c = m.config();
  auto stats_hook = std::make_shared<BlockStatsHook>(m, 1, true);
  auto rec = std::make_shared<Recorder>(std::vector<std::string>{
      "layers.1.attn.q_proj.in", "layers.1.attn.query", "layers.1.attn.key", "layers.1.attn.probs",
      "layers.1.ffn.down_proj.in"});
  Hooks hooks;
  hooks.add(stats_hook);
  hooks.add(rec);
  m.forward(b, &hooks);
  const BlockStatistics s = stats_hook->finish();
  const int64_t N = b.lengths[0] + b.lengths[1], T = b.seq, D = c.hidden, dh = c.head_dim;
  ASSERT_EQ(s.tokens, N);
  const int64_t group = c.heads / c.kv_heads;

  const Tensor& X = rec->seen.at("layers.1.attn.q_proj.in");
  const Tensor& Q = rec->seen.at("layers.1.attn.query");
  const Tensor& K = rec->seen.at("layers.1.attn.key");
  const Tensor& A = rec->seen.at("layers.1.attn.probs");
  const Tensor& F = rec->seen.at("layers.1.ffn.down_proj.in");
  auto near = [](double got, double want, const char* what) {
    EXPECT_NEAR(got, want, 1e-4 * (1 + std::fabs(want))) << what;
  };
  // H of the attention input (shared by q, k, v) and of the down projection.
  for (int64_t i = 0; i < D; i += 37)
    for (int64_t j = 0; j < D; j += 11) {
      double h = 0;
      for (int bi = 0; bi < 2; ++bi)
        for (int64_t t = 0; t < b.lengths[bi]; ++t) h += double{X[(bi * T + t) * D + i]} * X[(bi * T + t) * D + j];
      near(s.H.at("layers.1.attn.k_proj")[i * D + j], 2 * h / N, "H attn");
    }
  const int64_t Fd = F.cols();
  for (int64_t i = 0; i < Fd; i += 53) {
    double h = 0;
    for (int bi = 0; bi < 2; ++bi)
      for (int64_t t = 0; t < b.lengths[bi]; ++t) h += double{F[(bi * T + t) * Fd + i]} * F[(bi * T + t) * Fd + 5];
    near(s.H.at("layers.1.ffn.down_proj")[i * Fd + 5], 2 * h / N, "H down");
  }
  for (int64_t g = 0; g < c.kv_heads; ++g)
    for (int64_t i = 0; i < dh; i += 3)
      for (int64_t j = 0; j < dh; j += 5) {
        double gq = 0, gk = 0;
        for (int bi = 0; bi < 2; ++bi)
          for (int64_t t = 0; t < b.lengths[bi]; ++t) {
            const float* k = K.data() + (bi * T + t) * c.kv_heads * dh + g * dh;
            gq += double{k[i]} * k[j];
            for (int64_t h = g * group; h < (g + 1) * group; ++h) {
              const float* q = Q.data() + (bi * T + t) * c.heads * dh + h * dh;
              gk += double{q[i]} * q[j];
            }
          }
        near(s.G_Q[g][i * dh + j], 2 * gq / N, "G_Q");
        near(s.G_K[g][i * dh + j], 2 * gk / N / group, "G_K");
      }
  // H_V: Σ over the group's heads of (A_h X)ᵀ(A_h X), element (i, j) for a few pairs.
  for (int64_t g = 0; g < c.kv_heads; ++g)
    for (auto [i, j] : {std::pair<int64_t, int64_t>{0, 0}, {5, 88}, {127, 64}}) {
      double hv = 0;
      for (int64_t h = g * group; h < (g + 1) * group; ++h)
        for (int bi = 0; bi < 2; ++bi)
          for (int64_t t = 0; t < b.lengths[bi]; ++t) {
            double yi = 0, yj = 0;
            for (int64_t u = 0; u < b.lengths[bi]; ++u) {
              const double a = A[((bi * c.heads + h) * T + t) * T + u];
              yi += a * X[(bi * T + u) * D + i];
              yj += a * X[(bi * T + u) * D + j];
            }
            hv += yi * yj;
          }
      near(s.H_V[g][i * D + j], 2 * hv / N, "H_V");
    }
}

// The V objective is exact: tr(ΔW_V H_V ΔW_Vᵀ) equals the change of the attention context
// (summed over the heads that read each V head), since the context is linear in W_V.
TEST(BlockStats, ValueObjectiveEqualsTheMeasuredContextError) {
  Model m = Model::load(testing::default_model());
  const auto batches = calibration(2, 32, 2);
  const Batch& b = batches[0];
  auto stats_hook = std::make_shared<BlockStatsHook>(m, 0, true);
  auto before = std::make_shared<Recorder>(std::vector<std::string>{"layers.0.attn.context"});
  Hooks hooks;
  hooks.add(stats_hook);
  hooks.add(before);
  m.forward(b, &hooks);
  BlockStatistics s = stats_hook->finish();

  Linear& v = m.blocks[0].v;
  const Tensor W = v.weight.clone();
  Tensor W_hat = W.clone();
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.f, 1e-2f);
  for (int64_t i = 0; i < W_hat.numel(); ++i) W_hat[i] += noise(rng);
  v.weight = W_hat.clone();
  auto after = std::make_shared<Recorder>(std::vector<std::string>{"layers.0.attn.context"});
  Hooks h2;
  h2.add(after);
  m.forward(b, &h2);

  const Tensor& c0 = before->seen.at("layers.0.attn.context");
  const Tensor& c1 = after->seen.at("layers.0.attn.context");
  double measured = 0;
  const int64_t T = b.seq, C = c0.cols();
  for (int bi = 0; bi < b.batch; ++bi)
    for (int64_t t = 0; t < b.lengths[bi]; ++t)
      for (int64_t j = 0; j < C; ++j) {
        const double d = c1[(bi * T + t) * C + j] - c0[(bi * T + t) * C + j];
        measured += d * d;
      }
  Objective obj;
  obj.H = s.H_V;
  const double predicted = obj.evaluate(W, W_hat) * s.tokens / 2;
  EXPECT_NEAR(predicted, measured, 2e-3 * measured);
}

PipelineOptions options(Method m, int bits) {
  PipelineOptions o;
  o.method = m;
  o.format.bits = bits;
  o.iters = 60;  // learned rounding: enough to move, short enough for a unit test
  return o;
}

TEST(Pipeline, EveryMethodBeatsOrTiesRoundToNearestOnEveryLayer) {
  const auto calib = calibration(2, 48, 4);
  for (Method method : {Method::RTN, Method::GPTQ, Method::AdaRound, Method::ZFold, Method::Aespa}) {
    Model m = Model::load(testing::default_model());
    const QuantizeReport r = quantize_model(m, calib, options(method, 3));
    ASSERT_EQ(r.layers.size(), 14u) << method_name(method);
    ASSERT_EQ(r.weights.size(), 14u);
    for (const LayerReport& l : r.layers) {
      EXPECT_GT(l.objective_rtn, 0) << l.name;
      if (method == Method::RTN) {
        EXPECT_DOUBLE_EQ(l.objective, l.objective_rtn) << l.name;
      } else {
        EXPECT_LE(l.objective, l.objective_rtn * (1 + 1e-6)) << method_name(method) << " " << l.name;
      }
    }
    if (method == Method::ZFold || method == Method::Aespa) {
      EXPECT_EQ(r.folded_norms.size(), 4u) << "pre-norm LLaMA: ζ folds into both norms of both blocks";
    }
  }
}

TEST(Pipeline, GptqImprovesTheModelAndLeavesDequantizedWeightsInPlace) {
  const auto calib = calibration(4, 64, 5);
  Model m = Model::load(testing::default_model());
  const QuantizeReport r = quantize_model(m, calib, options(Method::GPTQ, 4));
  for (Linear* l : m.linears()) {
    const auto it = r.weights.find(l->name);
    if (it == r.weights.end()) continue;
    const Tensor w = it->second.dequantize();
    for (int64_t i = 0; i < w.numel(); ++i) ASSERT_EQ(w[i], l->weight[i]) << l->name;
  }
}

TEST(Pipeline, SameCodesWhateverTheThreadCount) {
  const auto calib = calibration(2, 32, 6);
  for (Method method : {Method::GPTQ, Method::Aespa}) {
    set_num_threads(1);
    Model a = Model::load(testing::default_model());
    const QuantizeReport ra = quantize_model(a, calib, options(method, 3));
    set_num_threads(2);
    Model b = Model::load(testing::default_model());
    const QuantizeReport rb = quantize_model(b, calib, options(method, 3));
    set_num_threads(0);
    for (const auto& [name, q] : ra.weights) {
      EXPECT_EQ(q.codes, rb.weights.at(name).codes) << method_name(method) << " " << name;
      EXPECT_EQ(q.grid.scale, rb.weights.at(name).grid.scale) << name;
    }
  }
}

}  // namespace
}  // namespace tquant::wq
