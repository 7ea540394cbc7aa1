#include "quant/calibration.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"

#include "model/point_names.h"
#include "test_paths.h"

namespace tquant {
namespace {

using json = nlohmann::ordered_json;

std::vector<std::string> known(int layers) {
  auto names = documented_recipe_names(layers);
  return names;
}

std::vector<int32_t> tokens(int n, int salt) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = 3 + (i * 7919 + salt * 104729) % 2040;
  return t;
}

TEST(ValidPart, DropsPaddingAndMaskedAttentionEntries) {
  BatchInfo info;
  info.batch = 2;
  info.seq = 3;
  const int32_t lengths[] = {3, 1};
  info.lengths = lengths;
  Tensor x({2, 3, 2});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(i);
  const ValidView v = valid_part(x, info);
  EXPECT_EQ(v.rows, 4);  // 3 + 1 tokens
  EXPECT_EQ(v.cols, 2);
  EXPECT_EQ(v.data, (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));

  info.causal = true;
  Tensor s({2, 1, 3, 3});
  for (int64_t i = 0; i < s.numel(); ++i) s[i] = static_cast<float>(i);
  const ValidView a = valid_part(s, info);
  // Sequence 0: rows see 1, 2, 3 keys; sequence 1 (length 1): one entry.
  EXPECT_EQ(a.data, (std::vector<float>{0, 3, 4, 6, 7, 8, 9}));
}

TEST(Calibration, SixteenBitActivationsBarelyChangeTheLogits) {
  Model model = Model::load(testing::default_model());
  const Tensor fp = model.forward(Batch::single(tokens(64, 1)));
  const Recipe r = parse_recipe(
      json::parse(R"({"activations": {"bits": 16, "estimator": "minmax",
                      "points": ["layers.*.attn.residual_sum", "layers.*.ffn.act.out", "layers.*.attn.probs"]}})"),
      "r.json", known(2));
  const Calibration c = calibrate_activations(model, r, calibration_windows(tokens(4000, 2), 8, 64, 0, -1, 4));
  EXPECT_EQ(c.points.size(), 6u);
  Hooks hooks;
  hooks.add(std::make_shared<FakeQuantHook>(c));
  const Tensor q = model.forward(Batch::single(tokens(64, 1)), &hooks);
  double err = 0, scale = 0;
  for (int64_t i = 0; i < fp.numel(); ++i) {
    err = std::max(err, double(std::fabs(q[i] - fp[i])));
    scale = std::max(scale, double(std::fabs(fp[i])));
  }
  EXPECT_LT(err, 2e-3 * scale);
  EXPECT_GT(err, 0);  // the hook did quantize
}

TEST(Calibration, FewerBitsMeanMoreErrorAndSavedRangesReproduceExactly) {
  Model model = Model::load(testing::default_model());
  const auto batches = calibration_windows(tokens(4000, 3), 8, 64, 5, -1, 4);
  const Tensor fp = model.forward(Batch::single(tokens(64, 1)));
  auto error_at = [&](int bits, Calibration* keep) {
    const Recipe r = parse_recipe(json::parse(fmt::format(
                                      R"({{"activations": {{"bits": {}, "granularity": "per_embedding_group",
                                          "groups": 4, "permute": true, "points": ["layers.*.attn.residual_sum"]}}}})",
                                      bits)),
                                  "r.json", known(2));
    const Calibration c = calibrate_activations(model, r, batches);
    if (keep) *keep = c;
    Hooks hooks;
    hooks.add(std::make_shared<FakeQuantHook>(c));
    const Tensor q = model.forward(Batch::single(tokens(64, 1)), &hooks);
    double sq = 0;
    for (int64_t i = 0; i < fp.numel(); ++i) sq += double(q[i] - fp[i]) * (q[i] - fp[i]);
    return std::make_pair(sq, q);
  };
  Calibration four;
  const auto [e4, q4] = error_at(4, &four);
  const auto [e8, q8] = error_at(8, nullptr);
  EXPECT_GT(e4, 4 * e8);

  const auto file = testing::scratch("calibration") / "c.json";
  save_calibration(file, four);
  const Calibration loaded = load_calibration(file);
  ASSERT_EQ(loaded.points.size(), four.points.size());
  Hooks hooks;
  hooks.add(std::make_shared<FakeQuantHook>(loaded));
  const Tensor again = model.forward(Batch::single(tokens(64, 1)), &hooks);
  for (int64_t i = 0; i < again.numel(); ++i) ASSERT_EQ(again[i], q4[i]);
}

TEST(Calibration, CalibrationWindowsAreSeededAndBounded) {
  const auto t = tokens(1000, 4);
  const auto a = calibration_windows(t, 5, 32, 7, 1, 2);
  const auto b = calibration_windows(t, 5, 32, 7, 1, 2);
  const auto c = calibration_windows(t, 5, 32, 8, 1, 2);
  ASSERT_EQ(a.size(), 3u);  // 2 + 2 + 1
  EXPECT_EQ(a[2].batch, 1);
  EXPECT_EQ(a[0].ids, b[0].ids);
  EXPECT_NE(a[0].ids, c[0].ids);
  EXPECT_EQ(a[0].ids[0], 1);  // BOS first
  EXPECT_THROW(calibration_windows(t, 5, 2000, 7, -1, 2), Error);
}

}  // namespace
}  // namespace tquant
