// tquant eval --q8-activations (Model::enable_q8_activations, kernels/qgemv_q8act.h) on the
// default model held packed: int8 activations move the logits a little away from the exact
// packed product, and no further than quantization noise; layers whose groups do not cover whole
// activation blocks keep float activations; the default stays exact.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>

#include "model/model.h"
#include "test_paths.h"
#include "wquant/grid_search.h"
#include "wquant/quantized_checkpoint.h"

namespace tquant {
namespace {

namespace fs = std::filesystem;

wq::WeightFormat format(int bits, int64_t group) {
  wq::WeightFormat f;
  f.bits = bits;
  f.group = group;
  return f;
}

// The default model with 4-bit g32 linears, 8-bit per-row v_proj and 4-bit g16 down_proj, as a
// quantized checkpoint.
const fs::path& checkpoint() {
  static const fs::path dir = [] {
    Model m = Model::load(testing::default_model());
    std::map<std::string, wq::QuantizedWeight> q;
    for (Block& b : m.blocks)
      for (Linear* l : {&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down}) {
        const wq::WeightFormat f = l == &b.down ? format(4, 16) : l == &b.v ? format(8, 0) : format(4, 32);
        q[l->name] = wq::round_to_grid(l->weight, wq::minmax_grid(l->weight, f));
      }
    const fs::path out = testing::scratch("q8_activations") / "ckpt";
    fs::remove_all(out);
    wq::write_quantized_checkpoint(m, q, {{"method", "rtn"}}, out, /*fake=*/false);
    return out;
  }();
  return dir;
}

Tensor logits(const Model& m) {
  std::vector<int32_t> ids;
  for (int i = 0; i < 96; ++i) ids.push_back(3 + (i * 7919) % 2040);
  return m.forward(Batch::single(ids));
}

TEST(Q8ActivationsModel, ChangesTheLogitsOnlySlightly) {
  const Model exact = Model::load(checkpoint(), /*keep_packed=*/true);
  Model q8 = Model::load(checkpoint(), /*keep_packed=*/true);
  ASSERT_TRUE(q8.has_packed_weights());
  EXPECT_EQ(q8.enable_q8_activations(), 12);  // 2 blocks x 6; down_proj's groups of 16 stay float
  for (const Block& b : q8.blocks) {
    EXPECT_TRUE(b.q.q8_activations && b.v.q8_activations && b.up.q8_activations);
    EXPECT_FALSE(b.down.q8_activations);
  }
  const Tensor a = logits(exact), b = logits(q8);
  // References: the default packed path matches the float forward of the dequantized weights up to
  // the order of the sums; the FP model shows how far the weight quantization itself moved them.
  const Tensor f = logits(Model::load(checkpoint()));
  const Tensor fp = logits(Model::load(testing::default_model()));  // before weight quantization
  ASSERT_EQ(a.numel(), b.numel());
  double diff2 = 0, norm2 = 0, noise2 = 0, wq2 = 0, max_diff = 0;
  int64_t same_top1 = 0, positions = a.numel() / a.shape().back();
  const int64_t V = a.shape().back();
  for (int64_t p = 0; p < positions; ++p) {
    int64_t ta = 0, tb = 0;
    for (int64_t v = 0; v < V; ++v) {
      const int64_t i = p * V + v;
      diff2 += (double(b[i]) - a[i]) * (double(b[i]) - a[i]);
      noise2 += (double(f[i]) - a[i]) * (double(f[i]) - a[i]);
      wq2 += (double(fp[i]) - a[i]) * (double(fp[i]) - a[i]);
      norm2 += double(a[i]) * a[i];
      max_diff = std::max(max_diff, std::fabs(double(b[i]) - a[i]));
      if (a[i] > a[p * V + ta]) ta = v;
      if (b[i] > b[p * V + tb]) tb = v;
    }
    same_top1 += ta == tb;
  }
  const double rel = std::sqrt(diff2 / norm2), weight_rel = std::sqrt(wq2 / norm2);
  EXPECT_GT(max_diff, 0) << "int8 activations should change the logits";
  EXPECT_LT(std::sqrt(noise2 / norm2), 1e-5) << "the exact packed path should match the float one";
  // Small next to what the 4-bit weights did. Seen: relative change 9.5e-3 against 0.12 for
  // the weight quantization, the top-1 token the same at 95 of 96 positions.
  EXPECT_LT(rel, 0.25 * weight_rel) << "int8 activations moved the logits by " << rel;
  EXPECT_LT(rel, 3e-2);
  EXPECT_GE(same_top1, positions * 9 / 10);
}

TEST(Q8ActivationsModel, NothingToSwitchWithoutPackedWeights) {
  Model m = Model::load(checkpoint());  // dequantized to float32
  EXPECT_FALSE(m.has_packed_weights());
  EXPECT_EQ(m.enable_q8_activations(), 0);
}

}  // namespace
}  // namespace tquant
