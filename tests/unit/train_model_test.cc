// The whole-model training engine: its forward is the inference forward, its gradients match
// finite differences of its loss (dropout included, as the masks are a function of the key),
// they do not depend on the thread count, AdamW and the schedules follow their closed forms,
// and a run resumed from a checkpoint ends bit for bit where the uninterrupted run does.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <filesystem>

#include "core/counter_rng.h"
#include "core/error.h"
#include "core/threads.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "test_paths.h"
#include "train_test_models.h"
#include "train/checkpoint.h"
#include "train/lm_batches.h"
#include "train/model_init.h"
#include "train/optimizer.h"
#include "train/trainable.h"
#include "train/training_loop.h"

namespace tquant::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

using namespace testmodels;

double loss_of(TrainableModel& tm, const Case& k, const Dropout& d) {
  return tm.accumulate(k.batch, k.targets(), 0.f, d, 42).mean();
}

// For every parameter tensor: the loss's derivative along the gradient's direction and along
// a random direction, by central differences, against the analytic gradient.
void expect_gradients_match(const std::string& name, const json& config, bool with_types, Dropout dropout) {
  Model m = Model::load(make_model(name, config));
  TrainableModel tm(m);
  const Case k = make_case(m.config(), with_types);
  tm.zero_grad();
  const LossSum s = tm.evaluate(k.batch, k.targets());
  tm.accumulate(k.batch, k.targets(), 1.f / static_cast<float>(s.count), dropout, 42);
  std::vector<Tensor> grads;
  for (Parameter& p : tm.parameters()) grads.push_back(p.grad.clone());
  int checked = 0;
  for (size_t pi = 0; pi < tm.parameters().size(); ++pi) {
    Parameter& p = tm.parameters()[pi];
    const Tensor& g = grads[pi];
    double gnorm = 0;
    for (int64_t i = 0; i < g.numel(); ++i) gnorm += double{g[i]} * g[i];
    gnorm = std::sqrt(gnorm);
    if (gnorm == 0) {
      // Only the padding row's embedding and, without token types, nothing else may be inert.
      ADD_FAILURE() << name << ": " << p.name << " has a zero gradient";
      continue;
    }
    for (int dir = 0; dir < 2; ++dir) {
      std::vector<float> d(g.numel());
      double dn = 0;
      for (int64_t i = 0; i < g.numel(); ++i) {
        d[i] = dir == 0 ? g[i] : counter_normal(100 + pi, i);
        dn += double{d[i]} * d[i];
      }
      double analytic = 0;
      for (int64_t i = 0; i < g.numel(); ++i) {
        d[i] = static_cast<float>(d[i] / std::sqrt(dn));
        analytic += double{g[i]} * d[i];
      }
      const float eps = 3e-3f;
      Tensor saved = p.value.clone();
      for (int64_t i = 0; i < g.numel(); ++i) p.value[i] = saved[i] + eps * d[i];
      const double up = loss_of(tm, k, dropout);
      for (int64_t i = 0; i < g.numel(); ++i) p.value[i] = saved[i] - eps * d[i];
      const double down = loss_of(tm, k, dropout);
      std::memcpy(p.value.data(), saved.data(), sizeof(float) * saved.numel());
      const double fd = (up - down) / (2.0 * eps);
      EXPECT_NEAR(analytic, fd, 0.02 * gnorm + 2e-4) << name << ": " << p.name << (dir ? " (random direction)" : "");
      ++checked;
    }
  }
  EXPECT_GE(checked, 20);
}

TEST(TrainModel, LlamaGradientsMatchFiniteDifferences) {
  expect_gradients_match("llama", llama_config(false), false, {});
}
TEST(TrainModel, TiedLlamaGradientsMatchFiniteDifferences) {
  expect_gradients_match("llama_tied", llama_config(true), false, {0.1f, 0.1f});
}
TEST(TrainModel, BertMaskedLmGradientsMatchFiniteDifferencesWithDropout) {
  expect_gradients_match("bert_mlm", bert_config("BertForMaskedLM"), true, {0.1f, 0.1f});
}
TEST(TrainModel, BertClassifierGradientsMatchFiniteDifferences) {
  expect_gradients_match("bert_cls", bert_config("BertForSequenceClassification", 3), true, {0.1f, 0.1f});
}
TEST(TrainModel, BertRegressionGradientsMatchFiniteDifferences) {
  expect_gradients_match("bert_reg", bert_config("BertForSequenceClassification", 1), true, {});
}

// The training forward is the inference forward: the loss from Model::forward's logits.
TEST(TrainModel, LossEqualsTheLossOfTheInferenceLogits) {
  for (const auto& [name, config] : std::vector<std::pair<std::string, json>>{
           {"fwd_llama", llama_config(false)}, {"fwd_mlm", bert_config("BertForMaskedLM")},
           {"fwd_cls", bert_config("BertForSequenceClassification", 3)}}) {
    Model m = Model::load(make_model(name, config));
    const Case k = make_case(m.config(), m.config().arch == Arch::Bert);
    const Tensor logits = m.forward(k.batch);
    const int64_t V = logits.cols();
    double loss = 0;
    int64_t n = 0;
    auto ce = [&](const float* l, int label) {
      double mx = l[0], s = 0;
      for (int64_t j = 1; j < V; ++j) mx = std::max<double>(mx, l[j]);
      for (int64_t j = 0; j < V; ++j) s += std::exp(l[j] - mx);
      return mx + std::log(s) - l[label];
    };
    if (!k.sequences.empty()) {
      for (int b = 0; b < 2; ++b, ++n) loss += ce(logits.data() + b * V, static_cast<int>(k.sequences[b]));
    } else {
      for (size_t i = 0; i < k.tokens.size(); ++i)
        if (k.tokens[i] != kIgnoreLabel) loss += ce(logits.data() + i * V, k.tokens[i]), ++n;
    }
    TrainableModel tm(m);
    const LossSum s = tm.evaluate(k.batch, k.targets());
    EXPECT_EQ(s.count, n) << name;
    EXPECT_NEAR(s.mean(), loss / n, 1e-5 * loss / n) << name;
  }
}

TEST(TrainModel, GradientsDoNotDependOnTheThreadCount) {
  Model m = Model::load(make_model("threads", bert_config("BertForMaskedLM")));
  TrainableModel tm(m);
  const Case k = make_case(m.config(), true);
  auto grads = [&](int threads) {
    set_num_threads(threads);
    tm.zero_grad();
    tm.accumulate(k.batch, k.targets(), 0.1f, {0.1f, 0.1f}, 3);
    std::vector<float> all;
    for (const Parameter& p : tm.parameters()) all.insert(all.end(), p.grad.data(), p.grad.data() + p.grad.numel());
    return all;
  };
  const std::vector<float> one = grads(1), two = grads(2), three = grads(3);
  set_num_threads(0);
  EXPECT_EQ(one, two);
  EXPECT_EQ(one, three);
}

TEST(TrainModel, AdamWFollowsItsClosedForm) {
  Tensor w({2}), g({2});
  w[0] = 1.f, w[1] = -2.f;
  std::vector<Parameter> params = {{"w", w, g, true}};
  AdamWOptions o;
  o.weight_decay = 0.1f;
  AdamW adam(params, o);
  double p0 = 1.0, m = 0, v = 0;
  const float grads[3] = {0.5f, -1.f, 2.f};
  for (int t = 1; t <= 3; ++t) {
    g[0] = grads[t - 1];
    g[1] = 0.f;
    adam.step(0.01f);
    p0 *= 1 - 0.01 * 0.1;
    m = 0.9 * m + 0.1 * grads[t - 1];
    v = 0.999 * v + 0.001 * grads[t - 1] * grads[t - 1];
    p0 -= 0.01 * (m / (1 - std::pow(0.9, t))) / (std::sqrt(v / (1 - std::pow(0.999, t))) + 1e-8);
    EXPECT_NEAR(w[0], p0, 1e-6);
  }
  EXPECT_NEAR(w[1], -2.0 * std::pow(1 - 0.001, 3), 1e-6);  // no gradient: only the decay
  params[0].decay = false;
  g[0] = 0.f;
  adam.step(0.01f);
  EXPECT_EQ(adam.steps(), 4);
}

TEST(TrainModel, SchedulesMatchHuggingFace) {
  Schedule s{1.f, 10, 110, Decay::Linear};
  EXPECT_FLOAT_EQ(s.lr_at(0), 0.f);
  EXPECT_FLOAT_EQ(s.lr_at(5), 0.5f);
  EXPECT_FLOAT_EQ(s.lr_at(10), 1.f);
  EXPECT_FLOAT_EQ(s.lr_at(60), 0.5f);
  EXPECT_FLOAT_EQ(s.lr_at(110), 0.f);
  s.decay = Decay::Cosine;
  EXPECT_NEAR(s.lr_at(60), 0.5f, 1e-6);
  EXPECT_NEAR(s.lr_at(35), 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-6);
  s.decay = Decay::Constant;
  EXPECT_FLOAT_EQ(s.lr_at(100), 1.f);
}

TEST(TrainModel, ClippingScalesToTheMaxNorm) {
  Tensor a({2}), ga({2});
  ga[0] = 3.f, ga[1] = 4.f;
  std::vector<Parameter> params = {{"a", a, ga, true}};
  EXPECT_DOUBLE_EQ(clip_grad_norm(params, 1.0), 5.0);
  EXPECT_NEAR(global_grad_norm(params), 1.0, 1e-6);
  ga[0] = NAN;
  EXPECT_THROW(clip_grad_norm(params, 1.0), Error);
}

std::vector<TrainBatch> fixed_batches(const ModelConfig& c, int64_t step) {
  std::vector<TrainBatch> out;
  for (int micro = 0; micro < 2; ++micro) {
    Case k = make_case(c, true);
    for (auto& id : k.batch.ids) id = 1 + static_cast<int>(counter_bits(step * 2 + micro, id) % (c.vocab_size - 1));
    out.push_back({k.batch, k.tokens, k.sequences});
  }
  return out;
}

// Training steps 0..5 in one go, and 0..2, a checkpoint, a fresh process's view of it
// (reloaded model and optimizer), then 3..5: identical weights.
TEST(TrainModel, ResumedRunEndsBitForBitWhereTheUninterruptedRunDoes) {
  const json config = bert_config("BertForMaskedLM");
  LoopOptions lo;
  lo.total_steps = 6;
  lo.schedule = {1e-2f, 2, 6, Decay::Linear};
  lo.dropout = {0.1f, 0.1f};
  lo.seed = 9;
  lo.log_every = 0;
  auto params_of = [](TrainableModel& tm) {
    std::vector<float> all;
    for (const Parameter& p : tm.parameters()) all.insert(all.end(), p.value.data(), p.value.data() + p.value.numel());
    return all;
  };
  Model a = Model::load(make_model("resume_a", config));
  TrainableModel ta(a);
  TrainingLoop la(ta, lo);
  la.run(0, [&](int64_t s) { return fixed_batches(a.config(), s); }, [](const StepLog&) {});

  const fs::path dir_b = make_model("resume_b", config);
  {
    Model b = Model::load(dir_b);
    TrainableModel tb(b);
    TrainingLoop lb(tb, lo);
    struct Killed {};
    try {
      lb.run(0, [&](int64_t s) { return fixed_batches(b.config(), s); }, [&](const StepLog& log) {
        if (log.step < 3) return;
        write_training_folder(dir_b, config, parameter_tensors(tb.parameters()), "", json{{"step", 3}},
                              &lb.optimizer(), &tb.parameters());
        throw Killed{};
      });
      FAIL() << "the run was not interrupted";
    } catch (const Killed&) {
    }
  }
  Model c = Model::load(dir_b);
  TrainableModel tc(c);
  TrainingLoop lc(tc, lo);
  const int64_t step = read_trainer_state(dir_b)["step"].get<int64_t>();
  ASSERT_EQ(step, 3);
  restore_optimizer(dir_b, tc.parameters(), step, lc.optimizer());
  lc.run(step, [&](int64_t s) { return fixed_batches(c.config(), s); }, [](const StepLog&) {});
  const std::vector<float> pa = params_of(ta), pc = params_of(tc);
  ASSERT_EQ(pa.size(), pc.size());
  EXPECT_EQ(pa, pc);
  // And training did move the weights.
  Model fresh = Model::load(make_model("resume_fresh", config));
  TrainableModel tf(fresh);
  EXPECT_NE(params_of(tf), pa);
}

}  // namespace
}  // namespace tquant::train
