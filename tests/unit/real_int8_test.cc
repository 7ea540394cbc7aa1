// --real-int8 (quant/real_int8.h, kernels/int8_linear.h): the default model's logits through the
// int8 GEMM against fake quantization for per-tensor, PEG, per-token and symmetric activations;
// which point feeds which linear; and the refusals (inputs off the grid, a per-token record of
// another tensor, asymmetric weights).
#include "quant/real_int8.h"

#include <gtest/gtest.h>

#include <cmath>

#include "expect_error.h"
#include "kernels/int8_linear.h"
#include "model/point_names.h"
#include "quant/fake_quant.h"
#include "test_paths.h"

namespace tquant {
namespace {

using json = nlohmann::ordered_json;

std::vector<std::string> known(int layers) {
  auto names = documented_point_names(layers);
  const auto linears = documented_linear_names(layers);
  names.insert(names.end(), linears.begin(), linears.end());
  return names;
}

std::vector<int32_t> tokens(int n, int salt) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = 3 + (i * 7919 + salt * 104729) % 2040;
  return t;
}

Recipe w8a8_recipe(const std::string& activations) {
  return parse_recipe(json::parse(R"({"name": "t", "weights": {"bits": 8, "granularity": "per_channel",
      "symmetric": true, "estimator": "minmax"}, "activations": )" + activations + "}"),
                      "t.json", known(2));
}

const char* kPoints = R"("points": ["layers.*.attn.norm.out", "layers.*.attn.context", "layers.*.ffn.norm.out",
    "layers.*.ffn.act.out", "final_norm.out", "layers.*.attn.residual_sum"])";

struct Logits {
  Tensor fake, int8;
  size_t int8_layers = 0;
};

Logits run_both(const Recipe& r) {
  const auto calib = calibration_windows(tokens(4000, 2), 6, 64, 0, -1, 3);
  const Batch batch = Batch::single(tokens(96, 1));
  Logits out;
  {
    Model m = Model::load(testing::default_model());
    quantize_weights(m, r);
    const Calibration c = calibrate_activations(m, r, calib);
    Hooks hooks;
    hooks.add(std::make_shared<FakeQuantHook>(c));
    out.fake = m.forward(batch, &hooks);
  }
  Model m = Model::load(testing::default_model());
  std::map<std::string, QuantParams> used;
  quantize_weights(m, r, {}, &used);
  const Calibration c = calibrate_activations(m, r, calib);
  const RealInt8Setup s = enable_real_int8(m, c, used);
  out.int8_layers = s.int8_layers.size();
  Hooks hooks;
  hooks.add(s.hook);
  out.int8 = m.forward(batch, &hooks);
  return out;
}

// Same logits up to float rounding: the integer sums are exact, the float epilogue rounds
// differently from a float sum of fake-quantized products, which can now and then move one
// activation of a later point across a rounding boundary (one step of its grid).
void expect_close(const Logits& l, const char* what) {
  ASSERT_EQ(l.fake.numel(), l.int8.numel());
  double max_err = 0, mean_err = 0, scale = 0;
  for (int64_t i = 0; i < l.fake.numel(); ++i) {
    const double e = std::fabs(double(l.fake[i]) - l.int8[i]);
    max_err = std::max(max_err, e);
    mean_err += e;
    scale = std::max(scale, std::fabs(double(l.fake[i])));
  }
  mean_err /= l.fake.numel();
  EXPECT_LT(max_err, 2e-2 * scale) << what;
  EXPECT_LT(mean_err, 1e-4 * scale) << what;
  EXPECT_EQ(l.int8_layers, 15u) << what;  // 2 blocks x 7 linears + the head
}

TEST(RealInt8, PerTensorActivationsMatchFakeQuantization) {
  expect_close(run_both(w8a8_recipe(std::string(R"({"bits": 8, "granularity": "per_tensor", "symmetric": false,
      "estimator": "minmax", )") + kPoints + "}")), "per-tensor");
}

TEST(RealInt8, PerEmbeddingGroupActivationsMatchFakeQuantization) {
  expect_close(run_both(w8a8_recipe(std::string(R"({"bits": 8, "granularity": "per_embedding_group", "groups": 3,
      "permute": true, "symmetric": false, "estimator": "minmax", )") + kPoints +
      R"(}, "overrides": {"layers.*.ffn.act.out": {"granularity": "per_tensor"}})")), "peg");
}

TEST(RealInt8, PerTokenActivationsMatchFakeQuantization) {
  expect_close(run_both(w8a8_recipe(std::string(R"({"bits": 8, "granularity": "per_token", "symmetric": false, )") +
                                    kPoints + "}")), "per-token");
}

TEST(RealInt8, SymmetricSevenBitActivationsMatchFakeQuantization) {
  expect_close(run_both(w8a8_recipe(std::string(R"({"bits": 7, "granularity": "per_tensor", "symmetric": true,
      "estimator": "minmax", )") + kPoints + "}")), "symmetric 7-bit");
}

TEST(RealInt8, InputPointsFollowTheForwardPass) {
  ModelConfig llama;
  llama.layers = 2;
  EXPECT_EQ(linear_input_point(llama, "layers.1.attn.k_proj"), "layers.1.attn.norm.out");
  EXPECT_EQ(linear_input_point(llama, "layers.0.attn.o_proj"), "layers.0.attn.context");
  EXPECT_EQ(linear_input_point(llama, "layers.1.ffn.gate_proj"), "layers.1.ffn.norm.out");
  EXPECT_EQ(linear_input_point(llama, "layers.1.ffn.down_proj"), "layers.1.ffn.act.out");
  EXPECT_EQ(linear_input_point(llama, "lm_head"), "final_norm.out");
  ModelConfig bert;
  bert.layers = 2;
  bert.pre_norm = false;
  bert.embedding_norm = true;
  bert.final_norm = false;
  EXPECT_EQ(linear_input_point(bert, "layers.0.attn.q_proj"), "embed.norm.out");
  EXPECT_EQ(linear_input_point(bert, "layers.1.attn.v_proj"), "layers.0.ffn.norm.out");
  EXPECT_EQ(linear_input_point(bert, "layers.1.ffn.up_proj"), "layers.1.attn.norm.out");
  EXPECT_EQ(linear_input_point(bert, "pooler.dense"), "layers.1.ffn.norm.out");
  EXPECT_EQ(linear_input_point(bert, "classifier"), "pooler.out");
  EXPECT_EQ(linear_input_point(bert, "mlm.decoder"), "mlm.norm.out");
  testing::expect_error([&] { linear_input_point(bert, "layers.7.attn.q_proj"); }, {"layers.7.attn.q_proj"});
}

Int8Linear tiny_layer() {
  // W = [[1, 2], [3, -4]] with s_w = 1; input quantizer s = 0.5, z = 2 (asymmetric 8-bit).
  Int8Linear l;
  const std::vector<int8_t> codes = {1, 2, 3, -4};
  l.weight = make_int8_weight(codes, 2, 2, std::vector<float>{1.f, 1.f}, {}, "tiny");
  l.input_point = "p.out";
  l.group_scale = {0.5f};
  l.group_zero = {2.f};
  return l;
}

TEST(RealInt8, OnGridInputGivesTheExactProduct) {
  const Int8Linear l = tiny_layer();
  const float x[2] = {1.5f, -1.f};  // codes 5 and 0
  float y[2];
  int8_linear_forward(l, x, 1, 2, nullptr, y, "tiny");
  EXPECT_EQ(y[0], 1.5f * 1 + -1.f * 2);
  EXPECT_EQ(y[1], 1.5f * 3 + -1.f * -4);
}

TEST(RealInt8, OffGridInputIsRefusedNamingLayerAndPoint) {
  const Int8Linear l = tiny_layer();
  const float x[2] = {1.5f, 0.3f};
  float y[2];
  testing::expect_error([&] { int8_linear_forward(l, x, 1, 2, nullptr, y, "tiny"); },
                        {"tiny", "p.out", "0.3", "column 1", "not on the grid"});
}

TEST(RealInt8, PerTokenRecordOfAnotherTensorIsRefused) {
  Int8Linear l = tiny_layer();
  l.per_token = std::make_shared<PerTokenRecord>();
  const float other[2] = {0.f, 0.f};
  l.per_token->data = other;
  l.per_token->rows = 1;
  l.per_token->cols = 2;
  l.per_token->scale = {0.5f};
  l.per_token->zero = {2.f};
  const float x[2] = {1.5f, -1.f};
  float y[2];
  testing::expect_error([&] { int8_linear_forward(l, x, 1, 2, nullptr, y, "tiny"); }, {"tiny", "p.out", "per-token"});
  l.per_token->data = x;
  int8_linear_forward(l, x, 1, 2, nullptr, y, "tiny");
  EXPECT_EQ(y[1], 1.5f * 3 + -1.f * -4);
}

TEST(RealInt8, AsymmetricWeightsAreRefusedNamingTheLayer) {
  const Recipe r = parse_recipe(json::parse(std::string(R"({"name": "a", "weights": {"bits": 8, "symmetric": false,
      "estimator": "minmax"}, "activations": {"bits": 8, "estimator": "minmax", )") + kPoints + "}}"),
                                "a.json", known(2));
  Model m = Model::load(testing::default_model());
  std::map<std::string, QuantParams> used;
  quantize_weights(m, r, {}, &used);
  const Calibration c = calibrate_activations(m, r, calibration_windows(tokens(2000, 2), 2, 32, 0, -1, 2));
  testing::expect_error([&] { enable_real_int8(m, c, used); }, {"layers.0.attn.q_proj", "symmetric weights"});
}

}  // namespace
}  // namespace tquant
