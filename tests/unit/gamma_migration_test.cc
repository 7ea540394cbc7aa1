#include "ptq/gamma_migration.h"

#include <gtest/gtest.h>

#include <cmath>

#include "test_paths.h"

namespace tquant {
namespace {

class Capture : public Hook {
 public:
  explicit Capture(std::string point) : point_(std::move(point)) {}
  void on_activation(const std::string& point, Tensor& x, const BatchInfo&) override {
    if (point == point_) value = x.clone();
  }
  Tensor value;

 private:
  std::string point_;
};

const std::vector<int32_t> kIds = {1, 300, 45, 1200, 7, 88, 1999, 5};

TEST(GammaMigration, LeavesLogitsUnchangedAndQuantizesTheNonScalingNormOutput) {
  Model fp = Model::load(testing::default_model());
  Model migrated = Model::load(testing::default_model());
  const Tensor gamma = fp.blocks[1].ffn_norm.gamma.clone();
  const auto report = migrate_gamma(migrated);
  EXPECT_EQ(report.norms.size(), 4u);  // two per block; final_norm stays

  Hooks fp_hooks, mig_hooks;
  auto fp_cap = std::make_shared<Capture>("layers.1.ffn.norm.out");
  auto mig_cap = std::make_shared<Capture>("layers.1.ffn.norm.out");
  fp_hooks.add(fp_cap);
  mig_hooks.add(mig_cap);
  const Tensor a = fp.forward(Batch::single(kIds), &fp_hooks);
  const Tensor b = migrated.forward(Batch::single(kIds), &mig_hooks);
  float scale = 0;
  for (int64_t i = 0; i < a.numel(); ++i) scale = std::max(scale, std::fabs(a[i]));
  for (int64_t i = 0; i < a.numel(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5f * scale) << i;

  // RMSNorm has no β, so the migrated point is the FP norm output divided by the migrated
  // part of γ (all of it, except channels whose γ is too small to divide by, which keep it).
  const int64_t d = gamma.numel();
  const Tensor& kept = migrated.blocks[1].ffn_norm.gamma;
  int64_t migrated_channels = 0;
  for (int64_t j = 0; j < d; ++j) migrated_channels += kept[j] == 1.f;
  EXPECT_GE(migrated_channels, d - 2);
  for (int64_t r = 0; r < fp_cap->value.rows(); ++r)
    for (int64_t j = 0; j < d; ++j)
      ASSERT_NEAR(mig_cap->value[r * d + j] * (gamma[j] / kept[j]), fp_cap->value[r * d + j],
                  1e-5f * (1 + std::fabs(fp_cap->value[r * d + j])));
}

TEST(GammaMigration, TinyGammaStaysInTheNorm) {
  Model fp = Model::load(testing::default_model());
  Model migrated = Model::load(testing::default_model());
  // γ = 0 and γ = 1e-9 would make β/γ (and here x̂/γ-scaled weights) blow up; they must stay.
  for (Model* m : {&fp, &migrated}) {
    Tensor g = m->blocks[0].attn_norm.gamma.clone();
    g[3] = 0.f;
    g[7] = 1e-9f;
    m->blocks[0].attn_norm.gamma = g;
  }
  Model untouched = Model::load(testing::default_model());
  const int64_t baseline = migrate_gamma(untouched).channels_kept;
  const auto report = migrate_gamma(migrated);
  EXPECT_EQ(report.channels_kept, baseline + 2);
  EXPECT_EQ(migrated.blocks[0].attn_norm.gamma[3], 0.f);
  EXPECT_EQ(migrated.blocks[0].attn_norm.gamma[7], 1e-9f);
  const Tensor a = fp.forward(Batch::single(kIds));
  const Tensor b = migrated.forward(Batch::single(kIds));
  float scale = 0;
  for (int64_t i = 0; i < a.numel(); ++i) scale = std::max(scale, std::fabs(a[i]));
  for (int64_t i = 0; i < a.numel(); ++i) {
    ASSERT_TRUE(std::isfinite(b[i]));
    ASSERT_NEAR(a[i], b[i], 1e-5f * scale) << i;
  }
}

}  // namespace
}  // namespace tquant
