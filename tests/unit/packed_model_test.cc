// What `tquant eval` holds packed besides plain linears: a Z-Fold ζ per input column (applied to
// the input, Linear::input_scale) and a GGUF's block-typed token embedding with the tied head
// multiplying the same blocks. Either way the weights are the dequantizers' values bit for bit,
// so the logits equal those of the model loaded as float32 up to the order of the float sums.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "core/error.h"
#include "export/gguf_export.h"
#include "kernels/qblock_formats.h"
#include "model/model.h"
#include "test_paths.h"
#include "wquant/grid_search.h"
#include "wquant/quantized_checkpoint.h"

namespace tquant {
namespace {

namespace fs = std::filesystem;

Tensor logits(const Model& m) {
  std::vector<int32_t> ids;
  for (int i = 0; i < 96; ++i) ids.push_back(3 + (i * 7919) % 2040);
  return m.forward(Batch::single(ids));
}

// max |a - b| over max |b|: summation order alone gives ~1e-7; a wrong weight or a ζ applied
// twice or not at all gives ~1e-2 or more.
double relative_max_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return diff / scale;
}

// The default model with 4-bit g32 linears; o_proj and down_proj (which no norm precedes, so a
// Z-Fold ζ cannot be folded away) carry a ζ in [0.5, 2]: W ≈ s·(q − z)·ζ[c].
const fs::path& zeta_checkpoint() {
  static const fs::path dir = [] {
    Model m = Model::load(testing::default_model());
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> factor(0.5f, 2.f);
    std::map<std::string, wq::QuantizedWeight> q;
    wq::WeightFormat f;
    f.bits = 4;
    f.group = 32;
    for (Block& b : m.blocks)
      for (Linear* l : {&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down}) {
        if (l != &b.o && l != &b.down) {
          q[l->name] = wq::round_to_grid(l->weight, wq::minmax_grid(l->weight, f));
          continue;
        }
        const int64_t R = l->out(), C = l->in();
        std::vector<float> zeta(C);
        for (float& z : zeta) z = factor(rng);
        Tensor scaled({R, C});
        for (int64_t r = 0; r < R; ++r)
          for (int64_t c = 0; c < C; ++c) scaled[r * C + c] = l->weight[r * C + c] / zeta[c];
        wq::QuantizedWeight w = wq::round_to_grid(scaled, wq::minmax_grid(scaled, f));
        w.zeta = zeta;
        q[l->name] = std::move(w);
      }
    const fs::path out = testing::scratch("packed_model") / "zeta-ckpt";
    fs::remove_all(out);
    wq::write_quantized_checkpoint(m, q, {{"method", "zfold"}}, out, /*fake=*/false);
    return out;
  }();
  return dir;
}

TEST(PackedModel, ZFoldLayersStayPackedWithTheirZetaOnTheInput) {
  const Model packed = Model::load(zeta_checkpoint(), /*keep_packed=*/true);
  const Model fp = Model::load(zeta_checkpoint());
  for (const Block& b : packed.blocks) {
    for (const Linear* l : {&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down}) {
      ASSERT_TRUE(l->packed) << l->name;
      EXPECT_TRUE(l->weight.empty()) << l->name;
    }
    EXPECT_EQ(b.o.input_scale.numel(), b.o.in());
    EXPECT_EQ(b.down.input_scale.numel(), b.down.in());
    EXPECT_TRUE(b.q.input_scale.empty());
  }
  // The ζ matters: without it the packed product is far off.
  EXPECT_LT(relative_max_diff(logits(packed), logits(fp)), 1e-5);
  Model without = Model::load(zeta_checkpoint(), /*keep_packed=*/true);
  for (Block& b : without.blocks) b.o.input_scale = b.down.input_scale = Tensor();
  EXPECT_GT(relative_max_diff(logits(without), logits(fp)), 1e-2);
}

TEST(PackedModel, ZFoldLayersTakeInt8ActivationsOfTheScaledInput) {
  Model q8 = Model::load(zeta_checkpoint(), /*keep_packed=*/true);
  EXPECT_EQ(q8.enable_q8_activations(), 14);
  const double d = relative_max_diff(logits(q8), logits(Model::load(zeta_checkpoint())));
  EXPECT_GT(d, 1e-6);  // int8 activation blocks do change the logits
  EXPECT_LT(d, 3e-2);  // by rounding noise, not by a missing ζ (see above)
}

struct NoOpHook : Hook {
  void on_activation(const std::string&, Tensor&, const BatchInfo&) override {}
};

// Without hooks, q/k/v (and gate/up) share one int8 rounding of their input; with any hook each
// layer rounds its own input (a `.in` hook could change it). Both must give the same logits.
TEST(PackedModel, SharedInt8InputRoundingEqualsRoundingPerLayer) {
  Model q8 = Model::load(zeta_checkpoint(), /*keep_packed=*/true);
  q8.enable_q8_activations();
  std::vector<int32_t> ids;
  for (int i = 0; i < 96; ++i) ids.push_back(3 + (i * 7919) % 2040);
  Hooks per_layer;
  per_layer.add(std::make_shared<NoOpHook>());
  const Tensor shared = q8.forward(Batch::single(ids));
  const Tensor separate = q8.forward(Batch::single(ids), &per_layer);
  ASSERT_EQ(shared.numel(), separate.numel());
  for (int64_t i = 0; i < shared.numel(); ++i) ASSERT_EQ(shared[i], separate[i]) << i;
}

const fs::path& q4_0_gguf() {
  static const fs::path file = [] {
    const fs::path out = testing::scratch("packed_model") / "default-q4_0.gguf";
    fs::remove(out);
    gguf::export_gguf(testing::default_model(), gguf::TensorType::Q4_0, out);
    return out;
  }();
  return file;
}

TEST(PackedModel, GgufTokenEmbeddingAndTiedHeadStayInTheirBlocks) {
  const Model packed = Model::load(q4_0_gguf(), /*keep_packed=*/true);
  ASSERT_TRUE(packed.token_embedding_packed);
  EXPECT_EQ(packed.token_embedding_packed->format, QFormat::Q4_0);
  EXPECT_TRUE(packed.token_embedding.empty());
  EXPECT_EQ(packed.lm_head.packed, packed.token_embedding_packed);
  EXPECT_TRUE(packed.lm_head.weight.empty());
  EXPECT_TRUE(packed.has_packed_weights());
  try {
    packed.require_fp_weights("analysis");
    ADD_FAILURE() << "a packed token embedding must be refused where float weights are needed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token embedding is held packed (q4_0)"), std::string::npos) << e.what();
  }
  const Model fp = Model::load(q4_0_gguf());
  EXPECT_FALSE(fp.token_embedding_packed);
  EXPECT_LT(relative_max_diff(logits(packed), logits(fp)), 1e-5);
}

}  // namespace
}  // namespace tquant
