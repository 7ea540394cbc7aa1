#include "model/model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/error.h"
#include "core/threads.h"
#include "model/point_names.h"
#include "test_paths.h"

namespace tquant {
namespace {

class Recorder : public Hook {
 public:
  void on_activation(const std::string& point, Tensor& x, const BatchInfo& batch) override {
    names.push_back(point);
    shapes[point] = x.shape();
    layers[point] = batch.layer;
  }
  std::vector<std::string> names;
  std::map<std::string, Shape> shapes;
  std::map<std::string, int> layers;
};

class Scale : public Hook {
 public:
  Scale(std::string point, float factor) : point_(std::move(point)), factor_(factor) {}
  void on_activation(const std::string& point, Tensor& x, const BatchInfo&) override {
    if (point != point_) return;
    for (int64_t i = 0; i < x.numel(); ++i) x[i] *= factor_;
  }

 private:
  std::string point_;
  float factor_;
};

std::vector<int32_t> ids() { return {1, 200, 35, 900, 17, 4, 1500, 77}; }

TEST(DefaultModel, LoadsItsConfigAndTiedEmbeddings) {
  Model m = Model::load(testing::default_model());
  const ModelConfig& c = m.config();
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_EQ(c.layers, 2);
  EXPECT_EQ(c.hidden, 128);
  EXPECT_EQ(c.heads, 8);
  EXPECT_EQ(c.kv_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.intermediate, 384);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  EXPECT_EQ(m.lm_head.weight.data(), m.token_embedding.data());
  EXPECT_EQ(m.linears().size(), 2u * 7 + 1);
  EXPECT_EQ(m.blocks[1].k.weight.shape(), (Shape{64, 128}));
}

TEST(Hooks, EveryDocumentedPointRunsInOrderWithItsShape) {
  const Model m = Model::load(testing::default_model());
  Hooks hooks;
  auto rec = std::make_shared<Recorder>();
  hooks.add(rec);
  m.forward(Batch::single(ids()), &hooks);
  const std::vector<std::string> layer0 = {
      "embed.out", "layers.0.attn.norm.out", "layers.0.attn.q_proj.in", "layers.0.attn.q_proj.out",
      "layers.0.attn.k_proj.in", "layers.0.attn.k_proj.out", "layers.0.attn.v_proj.in",
      "layers.0.attn.v_proj.out", "layers.0.attn.query", "layers.0.attn.key", "layers.0.attn.scores",
      "layers.0.attn.probs", "layers.0.attn.context", "layers.0.attn.o_proj.in", "layers.0.attn.o_proj.out",
      "layers.0.attn.residual_sum", "layers.0.ffn.norm.out", "layers.0.ffn.gate_proj.in",
      "layers.0.ffn.gate_proj.out", "layers.0.ffn.up_proj.in", "layers.0.ffn.up_proj.out",
      "layers.0.ffn.act.out", "layers.0.ffn.down_proj.in", "layers.0.ffn.down_proj.out",
      "layers.0.ffn.residual_sum"};
  ASSERT_GE(rec->names.size(), layer0.size());
  EXPECT_EQ(std::vector<std::string>(rec->names.begin(), rec->names.begin() + layer0.size()), layer0);
  EXPECT_EQ(rec->names.size(), 1 + 2 * (layer0.size() - 1) + 4);  // + final_norm.out, lm_head.in/out, logits
  EXPECT_EQ(rec->names.back(), "logits");
  EXPECT_EQ(rec->shapes["layers.1.attn.scores"], (Shape{1, 8, 8, 8}));
  EXPECT_EQ(rec->shapes["layers.1.attn.key"], (Shape{1, 8, 64}));
  EXPECT_EQ(rec->shapes["layers.1.ffn.act.out"], (Shape{1, 8, 384}));
  EXPECT_EQ(rec->shapes["logits"], (Shape{1, 8, 2048}));
  EXPECT_EQ(rec->layers["layers.1.ffn.residual_sum"], 1);
  EXPECT_EQ(rec->layers["final_norm.out"], -1);
  // Recipes are validated against the documented names, so every point fired must be one.
  const auto documented = documented_point_names(2);
  for (const auto& name : rec->names)
    EXPECT_NE(std::find(documented.begin(), documented.end(), name), documented.end()) << name;
}

TEST(Hooks, InPlaceChangesFlowDownstream) {
  const Model m = Model::load(testing::default_model());
  const Tensor base = m.forward(Batch::single(ids()));

  Hooks identity;
  identity.add(std::make_shared<Scale>("layers.0.attn.residual_sum", 1.f));
  const Tensor same = m.forward(Batch::single(ids()), &identity);
  for (int64_t i = 0; i < base.numel(); ++i) ASSERT_EQ(same[i], base[i]);

  // RMSNorm is scale-invariant: scaling its input by 4 leaves block 1's norm outputs (and so the
  // attention branch) unchanged, but the residual stream itself is scaled, so logits change.
  Hooks scale;
  scale.add(std::make_shared<Scale>("layers.1.attn.residual_sum", 4.f));
  const Tensor changed = m.forward(Batch::single(ids()), &scale);
  double diff = 0;
  for (int64_t i = 0; i < base.numel(); ++i) diff = std::max(diff, double(std::fabs(changed[i] - base[i])));
  EXPECT_GT(diff, 1e-2);

  // Doubling the logits is seen by the caller exactly.
  Hooks twice;
  twice.add(std::make_shared<Scale>("logits", 2.f));
  const Tensor doubled = m.forward(Batch::single(ids()), &twice);
  for (int64_t i = 0; i < base.numel(); ++i) ASSERT_EQ(doubled[i], 2.f * base[i]);
}

TEST(Forward, PaddingDoesNotChangeTheUnpaddedPositions) {
  const Model m = Model::load(testing::default_model());
  const Tensor alone = m.forward(Batch::single({1, 200, 35}));
  Batch b;
  b.batch = 2;
  b.seq = 8;
  b.ids = {1, 200, 35, 0, 0, 0, 0, 0, 1, 200, 35, 900, 17, 4, 1500, 77};
  b.lengths = {3, 8};
  const Tensor both = m.forward(b);
  for (int64_t i = 0; i < 3 * 2048; ++i) ASSERT_NEAR(both[i], alone[i], 1e-4f * (1 + std::fabs(alone[i])));
}

TEST(Forward, SameResultWhateverTheThreadCount) {
  const Model m = Model::load(testing::default_model());
  std::vector<int32_t> many;
  for (int i = 0; i < 300; ++i) many.push_back(3 + (i * 37) % 2000);
  set_num_threads(1);
  const Tensor one = m.forward(Batch::single(many));
  set_num_threads(2);
  const Tensor two = m.forward(Batch::single(many));
  set_num_threads(0);
  for (int64_t i = 0; i < one.numel(); ++i) ASSERT_EQ(one[i], two[i]) << "at " << i;
}

TEST(Forward, StagedPassEqualsTheWholePassBitForBit) {
  const Model m = Model::load(testing::default_model());
  Batch b;
  b.batch = 2;
  b.seq = 8;
  b.ids = {1, 200, 35, 0, 0, 0, 0, 0, 1, 200, 35, 900, 17, 4, 1500, 77};
  b.lengths = {3, 8};
  auto whole = std::make_shared<Recorder>();
  Hooks whole_hooks;
  whole_hooks.add(whole);
  const Tensor expected = m.forward(b, &whole_hooks);
  auto staged = std::make_shared<Recorder>();
  Hooks staged_hooks;
  staged_hooks.add(staged);
  Tensor x = m.embed(b, &staged_hooks);
  for (int i = 0; i < m.config().layers; ++i) m.run_block(i, x, b, &staged_hooks);
  const Tensor got = m.run_head(x, b, &staged_hooks);
  ASSERT_EQ(got.shape(), expected.shape());
  for (int64_t i = 0; i < got.numel(); ++i) ASSERT_EQ(got[i], expected[i]) << "at " << i;
  EXPECT_EQ(staged->names, whole->names);
  Tensor wrong({1, 8, m.config().hidden});
  EXPECT_THROW(m.run_block(0, wrong, b), Error);
  EXPECT_THROW(m.run_block(m.config().layers, x, b), Error);
}

TEST(Forward, RejectsIdsOutsideTheVocabulary) {
  const Model m = Model::load(testing::default_model());
  try {
    m.forward(Batch::single({1, 5000}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 5000 at sequence 0 position 1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tquant
