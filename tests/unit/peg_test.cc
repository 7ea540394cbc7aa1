// Per-embedding-group quantization (METHODS.md §2): balanced contiguous groups when K does not
// divide C, the range-based permutation, and the two-pass calibration flow end to end.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "expect_error.h"
#include "quant/channel_groups.h"
#include "quant/fake_quant.h"
#include "quant/range_estimator.h"

namespace tquant {
namespace {

using testing::expect_error;

TEST(PegGroups, BalancedContiguousGroups) {
  // C = 10, K = 4: 10 = 3 + 3 + 2 + 2 (the first C mod K = 2 groups get the extra channel).
  EXPECT_EQ(balanced_group_sizes(10, 4), (std::vector<int64_t>{3, 3, 2, 2}));
  EXPECT_EQ(contiguous_channel_groups(10, 4), (std::vector<int32_t>{0, 0, 0, 1, 1, 1, 2, 2, 3, 3}));
  // The paper's case: d = 768, K = 6 divides: six groups of 128.
  EXPECT_EQ(balanced_group_sizes(768, 6), std::vector<int64_t>(6, 128));
  EXPECT_EQ(contiguous_channel_groups(3, 3), (std::vector<int32_t>{0, 1, 2}));
  expect_error([] { contiguous_channel_groups(4, 5); }, {"5 groups for 4 channels"});
  expect_error([] { contiguous_channel_groups(4, 0); }, {"0 groups"});
}

TEST(PegGroups, PermutationPutsOutlierChannelsTogether) {
  // Ranges of 8 channels; channels 1 and 4 are outliers. Sorted ascending: 0 (1), 2 (2), 3 (3),
  // 5 (4), 6 (5), 7 (6), 1 (50), 4 (60); cut into K = 4 groups of 2:
  // {0, 2} -> 0, {3, 5} -> 1, {6, 7} -> 2, {1, 4} -> 3.
  const std::vector<float> range = {1.f, 50.f, 2.f, 3.f, 60.f, 4.f, 5.f, 6.f};
  const std::vector<int32_t> map = range_permuted_channel_groups(range, 4);
  EXPECT_EQ(map, (std::vector<int32_t>{0, 3, 0, 1, 3, 1, 2, 2}));
  // K = 3 on the same channels: sizes 3, 3, 2, so the outliers share the last group of 2.
  EXPECT_EQ(range_permuted_channel_groups(range, 3), (std::vector<int32_t>{0, 2, 0, 0, 2, 1, 1, 1}));
}

TEST(PegGroups, PermutationBreaksTiesByChannelIndex) {
  // All equal: the sorted order is the channel order, i.e. the contiguous groups.
  const std::vector<float> flat(10, 2.f);
  EXPECT_EQ(range_permuted_channel_groups(flat, 4), contiguous_channel_groups(10, 4));
  // Ties among outliers: 2 and 5 both 9 -> 2 sorts first.
  const std::vector<float> r = {1.f, 1.f, 9.f, 1.f, 1.f, 9.f};
  EXPECT_EQ(range_permuted_channel_groups(r, 3), (std::vector<int32_t>{0, 0, 2, 1, 1, 2}));
  expect_error([] { range_permuted_channel_groups(std::vector<float>{1.f, -1.f}, 1); },
               {"channel 1", "range -1"});
  expect_error([] { range_permuted_channel_groups(std::vector<float>{1.f, NAN}, 1); }, {"channel 1"});
}

TEST(PegObserver, UnequalGroupsHandComputed) {
  // C = 10, K = 4 -> channel groups {0,1,2}, {3,4,5}, {6,7}, {8,9}; channel c of token t holds
  // (c + 1) * (t + 1) * sign, so each group's range is set by its last channel and the last token.
  const int64_t tokens = 3, channels = 10;
  std::vector<float> x(tokens * channels);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t c = 0; c < channels; ++c) x[t * channels + c] = (c + 1) * (t + 1) * (t == 1 ? -1.f : 1.f);
  ObserverOptions o;
  o.point = "layers.0.attn.residual_sum";
  o.grouping = per_embedding_group(contiguous_channel_groups(channels, 4));
  auto obs = make_range_observer(RangeEstimator::MinMax, o);
  obs->observe(x.data(), tokens, channels);
  const std::vector<Range> r = obs->ranges(8, true);
  ASSERT_EQ(r.size(), 4u);
  // Group 0 (channels 1..3): token 1 gives -3*2 = -6, token 2 gives 3*3 = 9.
  EXPECT_EQ(r[0].lo, -6.f);
  EXPECT_EQ(r[0].hi, 9.f);
  EXPECT_EQ(r[1].lo, -12.f);  // channel 6 (value 6): -12 and 18
  EXPECT_EQ(r[1].hi, 18.f);
  EXPECT_EQ(r[2].hi, 24.f);  // channel 8
  EXPECT_EQ(r[3].lo, -20.f);  // channel 10
  EXPECT_EQ(r[3].hi, 30.f);
  // Symmetric 8 bits: s_k = absmax_k / 127.
  const QuantParams p = obs->finalize(8, true);
  EXPECT_FLOAT_EQ(p.scale[0], 9.f / 127);
  EXPECT_FLOAT_EQ(p.scale[3], 30.f / 127);
  // Channel 9 (group 3, value 10 at token 0): 10 / (30/127) = 42.33 -> 42 -> 42 * 30/127.
  std::vector<float> y = x;
  fake_quantize(y.data(), tokens, channels, p, "t");
  EXPECT_FLOAT_EQ(y[9], 42 * (30.f / 127));
}

// Activations [tokens, C] with two outlier channels (as dims 308 and 381 of BERT-base).
std::vector<float> activations_with_outliers(int64_t tokens, int64_t channels, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> x(tokens * channels);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t c = 0; c < channels; ++c)
      x[t * channels + c] = g(rng) * (c == 5 || c == 17 ? 40.f : 1.f);
  return x;
}

double fake_quant_sq_error(const std::vector<float>& x, int64_t rows, int64_t cols, const QuantParams& p) {
  std::vector<float> y = x;
  fake_quantize(y.data(), rows, cols, p, "t");
  double e = 0;
  for (size_t i = 0; i < x.size(); ++i) e += double(x[i] - y[i]) * (x[i] - y[i]);
  return e;
}

TEST(PegObserver, TwoPassPermutedCalibration) {
  const int64_t tokens = 256, channels = 24, k = 4;
  const std::vector<float> calib = activations_with_outliers(tokens, channels, 1);
  const std::vector<float> eval = activations_with_outliers(tokens, channels, 2);
  // Pass 1: per-channel ranges.
  ObserverOptions o;
  o.point = "layers.0.ffn.residual_sum";
  o.grouping = per_channel(1);
  auto widths_obs = make_range_observer(RangeEstimator::MinMax, o);
  widths_obs->observe(calib.data(), tokens, channels);
  const std::vector<int32_t> map = range_permuted_channel_groups(channel_widths(widths_obs->ranges(8, false)), k);
  // The two outlier channels (5 and 17) sort last and share the last group.
  EXPECT_EQ(map[5], k - 1);
  EXPECT_EQ(map[17], k - 1);
  // Pass 2: calibrate with the map; compare 8-bit errors on fresh data.
  auto calibrate = [&](Grouping g) {
    o.grouping = std::move(g);
    auto obs = make_range_observer(RangeEstimator::MinMax, o);
    obs->observe(calib.data(), tokens, channels);
    return obs->finalize(8, false);
  };
  const double per_tensor_err = fake_quant_sq_error(eval, tokens, channels, calibrate(per_tensor()));
  const double peg_err =
      fake_quant_sq_error(eval, tokens, channels, calibrate(per_embedding_group(contiguous_channel_groups(channels, k))));
  const double peg_perm_err = fake_quant_sq_error(eval, tokens, channels, calibrate(per_embedding_group(map)));
  // The error is dominated by channels quantized with an outlier-sized step, ~ tokens·s²/12 each.
  // Per tensor: all 24 channels. Contiguous groups of 6: the outliers sit in groups 0 and 2, so
  // 12 channels. Permuted: the outliers share one group, so 6 channels (with a slightly larger
  // range, the max of both outliers). Expect roughly 1 : 1/2 : 1/4 (measured 532 : 257 : 152).
  EXPECT_LT(peg_err, 0.6 * per_tensor_err);
  EXPECT_LT(peg_perm_err, 0.7 * peg_err);
}

TEST(PegObserver, RejectsMismatchedWidth) {
  ObserverOptions o;
  o.point = "embed.out";
  o.grouping = per_embedding_group(contiguous_channel_groups(8, 2));
  auto obs = make_range_observer(RangeEstimator::Mse, o);
  const std::vector<float> x(2 * 6, 1.f);
  expect_error([&] { obs->observe(x.data(), 2, 6); }, {"embed.out", "8 channels", "6 columns"});
}

}  // namespace
}  // namespace tquant
