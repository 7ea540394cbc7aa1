// tquant analyze's building blocks: streaming moments, the activation and attention statistics
// hooks on synthetic tensors with hand-computed answers, the window plan, token kinds, and the
// SVG writers' output (well-formed XML with the expected, escaped labels).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/activation_stats.h"
#include "analysis/analysis_json.h"
#include "analysis/analyze.h"
#include "analysis/attention_stats.h"
#include "analysis/html_report.h"
#include "analysis/moments.h"
#include "analysis/plots.h"
#include "analysis/svg_charts.h"
#include "analysis/svg_common.h"
#include "analysis/token_kinds.h"
#include "analysis/windows.h"
#include "core/error.h"
#include "core/threads.h"
#include "model/model.h"
#include "test_paths.h"
#include "tokenize/tokenizer.h"

namespace tquant::analysis {
namespace {

// ---------------------------------------------------------------------------------------------
// Moments

TEST(Moments, MatchHandComputedMeanStdAndPearsonKurtosis) {
  // x = 1 2 3 4 100: mean 22; deviations -21 -20 -19 -18 78; Σd² = 7610, Σd⁴ = 37604834.
  const std::vector<float> x = {1, 2, 3, 4, 100};
  Moments m;
  m.add(x.data(), 5);
  EXPECT_EQ(m.count(), 5);
  EXPECT_DOUBLE_EQ(m.mean(), 22.0);
  EXPECT_DOUBLE_EQ(m.variance(), 7610.0 / 5);  // population variance
  EXPECT_NEAR(m.stddev(), std::sqrt(1522.0), 1e-12);
  EXPECT_NEAR(m.kurtosis(), (37604834.0 / 5) / (1522.0 * 1522.0), 1e-12);
  EXPECT_EQ(m.min(), 1);
  EXPECT_EQ(m.max(), 100);
}

TEST(Moments, MergingChunksEqualsOnePass) {
  std::vector<float> x;
  for (int i = 0; i < 1000; ++i) x.push_back(static_cast<float>(1000.0 + std::sin(i * 0.37) * 3 + (i % 17 == 0 ? 40 : 0)));
  Moments whole, parts;
  whole.add(x.data(), 1000);
  parts.add(x.data(), 1);         // uneven pieces exercise every branch of the merge
  parts.add(x.data() + 1, 330);
  Moments tail;
  tail.add(x.data() + 331, 669);
  parts.merge(tail);
  EXPECT_EQ(parts.count(), 1000);
  EXPECT_NEAR(parts.mean(), whole.mean(), 1e-9);
  EXPECT_NEAR(parts.variance(), whole.variance(), 1e-9 * whole.variance());
  EXPECT_NEAR(parts.kurtosis(), whole.kurtosis(), 1e-9 * whole.kurtosis());
  // A large offset must not wreck the kurtosis (the raw-power-sum formula would).
  EXPECT_GT(whole.kurtosis(), 3.0);
}

TEST(Moments, ConstantHasNoKurtosis) {
  const std::vector<float> x(10, 2.5f);
  Moments m;
  m.add(x.data(), 10);
  EXPECT_EQ(m.stddev(), 0);
  EXPECT_TRUE(std::isnan(m.kurtosis()));
}

// ---------------------------------------------------------------------------------------------
// ActivationStats

// id 7 is a special token, id 3 a delimiter, everything else ordinary text.
TokenKind synthetic_kind(int32_t id) {
  return id == 7 ? TokenKind::Special : id == 3 ? TokenKind::Delimiter : TokenKind::Other;
}

TEST(ActivationStats, PaddingIsIgnoredAndMomentsAreExact) {
  // [B=2, T=3, C=1]; the second sequence has 2 valid tokens, its padding holds a huge value.
  Tensor x({2, 3, 1});
  const float v[] = {1, 2, 3, 4, 100, 1e6f};
  for (int i = 0; i < 6; ++i) x[i] = v[i];
  const int32_t ids[] = {5, 5, 5, 5, 5, 0};
  const int32_t lengths[] = {3, 2};
  BatchInfo info{2, 3, ids, lengths, true, -1};
  ActivationStats stats([](const std::string&) { return true; }, synthetic_kind);
  stats.on_activation("embed.out", x, info);
  ASSERT_EQ(stats.points().size(), 1u);
  const PointStats& p = stats.points()[0];
  EXPECT_EQ(p.tokens, 5);
  EXPECT_DOUBLE_EQ(p.moments.mean(), 22.0);
  EXPECT_NEAR(p.moments.kurtosis(), (37604834.0 / 5) / (1522.0 * 1522.0), 1e-12);
  EXPECT_EQ(p.channel_max[0], 100);
  EXPECT_EQ(p.channel_min[0], 1);
}

TEST(ActivationStats, FindsTheInjectedOutlierChannelAndTheTokenCarryingIt) {
  // [B=2, T=4, C=64]: every value is -1 at even and +1 at odd positions, except channel 17 at
  // sequence 1 position 2 (= 40, a special token) and channel 40 at sequence 0 position 1 (= 5).
  const int B = 2, T = 4, C = 64;
  Tensor x({B, T, C});
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int c = 0; c < C; ++c) x[(b * T + t) * C + c] = t % 2 ? 1.f : -1.f;
  x[(1 * T + 2) * C + 17] = 40;
  x[(0 * T + 1) * C + 40] = 5;
  const int32_t ids[] = {7, 5, 3, 5, /* sequence 1 */ 7, 5, 7, 3};
  const int32_t lengths[] = {T, T};
  BatchInfo info{B, T, ids, lengths, true, 0};

  ActivationStats stats([](const std::string& n) { return n == "layers.0.ffn.residual_sum"; }, synthetic_kind);
  stats.set_first_sample(10);
  stats.on_activation("layers.0.ffn.residual_sum", x, info);
  stats.on_activation("layers.0.attn.residual_sum", x, info);  // not selected
  ASSERT_EQ(stats.points().size(), 1u);
  stats.start_attribution();
  stats.on_activation("layers.0.ffn.residual_sum", x, info);

  const PointStats& p = stats.points()[0];
  EXPECT_EQ(p.layer, 0);
  EXPECT_EQ(p.channels, C);
  // Channel maxima: 62 ones, 40 and 5. Mean 107/64; population variance 1687/64 - (107/64)^2.
  const double mean = 107.0 / 64, sd = std::sqrt(1687.0 / 64 - mean * mean);
  EXPECT_NEAR(p.dim_max_mean, mean, 1e-12);
  EXPECT_NEAR(p.dim_max_std, sd, 1e-12);
  EXPECT_NEAR(p.dim_threshold, mean + 6 * sd, 1e-12);  // ≈ 30.8: 40 is above, 5 is not
  EXPECT_EQ(p.outlier_dims, std::vector<int32_t>{17});
  EXPECT_EQ(p.channel_max_abs(17), 40.f);
  EXPECT_EQ(p.channel_max_abs(40), 5.f);

  // The carrier: window 10 + 1, position 2, the special token 7.
  ASSERT_EQ(p.inspected_dims, std::vector<int32_t>{17});
  ASSERT_FALSE(p.top_tokens[0].empty());
  const TokenValue& top = p.top_tokens[0][0];
  EXPECT_EQ(top.id, 7);
  EXPECT_EQ(top.sample, 11);
  EXPECT_EQ(top.position, 2);
  EXPECT_EQ(top.value, 40.f);
  // Distinct ids only: 7 (40), then 5 and 3 (|x| = 1 each, earliest first).
  ASSERT_EQ(p.top_tokens[0].size(), 3u);
  EXPECT_EQ(p.top_tokens[0][1].id, 5);
  EXPECT_EQ(p.top_tokens[0][1].sample, 10);
  EXPECT_EQ(p.top_tokens[0][1].position, 1);
  EXPECT_EQ(p.top_tokens[0][2].id, 3);

  // Σ|x| of channel 17 = 7 ones + 40 = 47: special tokens (0,0) (1,0) (1,2) carry 1 + 1 + 40.
  EXPECT_DOUBLE_EQ(p.outlier_abs_by_kind[static_cast<int>(TokenKind::Special)], 42);
  EXPECT_DOUBLE_EQ(p.outlier_abs_by_kind[static_cast<int>(TokenKind::Delimiter)], 2);
  EXPECT_DOUBLE_EQ(p.outlier_abs_by_kind[static_cast<int>(TokenKind::Other)], 3);
  EXPECT_EQ(p.tokens_by_kind[static_cast<int>(TokenKind::Special)], 3);

  // Whole tensor: sum 45 over 512 values, Σx² = 510 + 1600 + 25, so 6 std ≈ 12.2: only the 40.
  EXPECT_NEAR(p.moments.mean(), 45.0 / 512, 1e-12);
  EXPECT_NEAR(p.moments.variance(), 2135.0 / 512 - (45.0 / 512) * (45.0 / 512), 1e-12);
  EXPECT_EQ(p.beyond_6sigma, 1);
  EXPECT_EQ(p.beyond_6sigma_by_kind[static_cast<int>(TokenKind::Special)], 1);
}

TEST(ActivationStats, NoOutlierInAUniformTensorButTheLargestChannelIsStillInspected) {
  const int C = 64;
  Tensor x({1, 2, C});
  for (int c = 0; c < C; ++c) x[c] = x[C + c] = 1.f + 0.01f * (c % 5);
  const int32_t ids[] = {5, 6};
  const int32_t lengths[] = {2};
  BatchInfo info{1, 2, ids, lengths, true, -1};
  ActivationStats stats([](const std::string&) { return true; }, synthetic_kind);
  stats.on_activation("embed.out", x, info);
  stats.start_attribution();
  stats.on_activation("embed.out", x, info);
  const PointStats& p = stats.points()[0];
  EXPECT_TRUE(p.outlier_dims.empty());
  EXPECT_EQ(p.inspected_dims, std::vector<int32_t>{4});  // first channel with the largest value
}

TEST(ActivationStats, PooledPointsCountOneRowPerSequenceAtItsFirstToken) {
  // pooler.out is [B, C]: one row per sequence, attributed to position 0 (the [CLS] it reads).
  Tensor x({2, 3});
  const float v[] = {1, -2, 3, 4, 5, -60};
  for (int i = 0; i < 6; ++i) x[i] = v[i];
  const int32_t ids[] = {7, 5, 5, 3, 5, 0};  // [B=2, T=3]
  const int32_t lengths[] = {3, 2};
  BatchInfo info{2, 3, ids, lengths, false, -1};
  ActivationStats stats([](const std::string&) { return true; }, synthetic_kind);
  stats.on_activation("pooler.out", x, info);
  stats.start_attribution();
  stats.on_activation("pooler.out", x, info);
  const PointStats& p = stats.points()[0];
  EXPECT_EQ(p.tokens, 2);
  EXPECT_EQ(p.moments.count(), 6);
  EXPECT_DOUBLE_EQ(p.moments.mean(), -49.0 / 6);
  EXPECT_EQ(p.channel_min, (std::vector<float>{1, -2, -60}));
  EXPECT_EQ(p.inspected_dims, std::vector<int32_t>{2});  // 3 channels: never an outlier dim
  EXPECT_TRUE(p.outlier_dims.empty());
  ASSERT_EQ(p.top_tokens[0].size(), 2u);
  EXPECT_EQ(p.top_tokens[0][0].id, 3);  // sequence 1's first token carries the -60
  EXPECT_EQ(p.top_tokens[0][0].position, 0);
  EXPECT_EQ(p.tokens_by_kind[static_cast<int>(TokenKind::Special)], 1);
  EXPECT_EQ(p.tokens_by_kind[static_cast<int>(TokenKind::Delimiter)], 1);
}

TEST(ActivationStats, ASecondPassThatSeesANewPointFails) {
  Tensor x({1, 1, 4});
  const int32_t ids[] = {5};
  const int32_t lengths[] = {1};
  BatchInfo info{1, 1, ids, lengths, true, -1};
  ActivationStats stats([](const std::string&) { return true; }, synthetic_kind);
  stats.on_activation("embed.out", x, info);
  stats.start_attribution();
  EXPECT_THROW(stats.on_activation("final_norm.out", x, info), Error);
}

// ---------------------------------------------------------------------------------------------
// AttentionStats

TEST(AttentionStats, MassOnSpecialTokensAndDelimitersAndEntropyPerHead) {
  // One sequence: special, delimiter, other. Causal probs [1, H=2, 3, 3]; masked entries hold
  // garbage (5) that must be ignored.
  Tensor probs({1, 2, 3, 3});
  const float h0[9] = {1, 5, 5, 0.5f, 0.5f, 5, 0.2f, 0.3f, 0.5f};
  const float h1[9] = {1, 5, 5, 0, 1, 5, 0, 0, 1};
  for (int i = 0; i < 9; ++i) probs[i] = h0[i], probs[9 + i] = h1[i];
  const int32_t ids[] = {7, 3, 5};
  const int32_t lengths[] = {3};
  BatchInfo info{1, 3, ids, lengths, true, 4};
  AttentionStats stats(synthetic_kind);
  stats.on_activation("layers.4.attn.probs", probs, info);
  const auto heads = stats.heads();
  ASSERT_EQ(heads.size(), 2u);
  EXPECT_EQ(heads[0].layer, 4);
  EXPECT_EQ(heads[0].rows, 3);
  EXPECT_NEAR(heads[0].special_mass, (1 + 0.5 + 0.2) / 3, 1e-7);
  EXPECT_NEAR(heads[0].delimiter_mass, (0 + 0.5 + 0.3) / 3, 1e-7);
  const double e2 = -(0.2 * std::log(0.2) + 0.3 * std::log(0.3) + 0.5 * std::log(0.5));
  EXPECT_NEAR(heads[0].entropy, (0 + std::log(2.0) + e2) / 3, 1e-7);
  EXPECT_NEAR(heads[0].uniform_special, (1 + 1.0 / 2 + 1.0 / 3) / 3, 1e-12);
  EXPECT_NEAR(heads[0].uniform_delimiter, (0 + 1.0 / 2 + 1.0 / 3) / 3, 1e-12);
  // Head 1 attends to the newest key only: one row each on special, delimiter, other.
  EXPECT_EQ(heads[1].head, 1);
  EXPECT_NEAR(heads[1].special_mass, 1.0 / 3, 1e-12);
  EXPECT_NEAR(heads[1].delimiter_mass, 1.0 / 3, 1e-12);
  EXPECT_NEAR(heads[1].entropy, 0, 1e-12);
}

TEST(AttentionStats, ScoresUseOnlyVisibleEntries) {
  // Bidirectional, sequence of 2 valid tokens out of T = 3: the third key and query are padding.
  Tensor scores({1, 1, 3, 3});
  const float s[9] = {1, 2, 99, 3, 4, 99, 99, 99, 99};
  for (int i = 0; i < 9; ++i) scores[i] = s[i];
  const int32_t ids[] = {7, 5, 0};
  const int32_t lengths[] = {2};
  BatchInfo info{1, 3, ids, lengths, false, 0};
  AttentionStats stats(synthetic_kind);
  stats.on_activation("layers.0.attn.scores", scores, info);
  const auto sc = stats.scores();
  ASSERT_EQ(sc.size(), 1u);
  EXPECT_EQ(sc[0].moments.count(), 4);
  EXPECT_DOUBLE_EQ(sc[0].moments.mean(), 2.5);
  EXPECT_EQ(sc[0].moments.max(), 4);
}

TEST(AttentionCapture, KeepsTheRequestedHeadOfTheRequestedWindow) {
  Tensor probs({2, 2, 2, 2});
  for (int i = 0; i < 16; ++i) probs[i] = static_cast<float>(i);
  const int32_t ids[] = {7, 5, 7, 6};
  const int32_t lengths[] = {2, 2};
  BatchInfo info{2, 2, ids, lengths, true, 1};
  AttentionCapture cap(1, 1, 5, 40);  // window 5 = the second sequence of a batch starting at 4
  cap.set_first_sample(4);
  cap.on_activation("layers.0.attn.probs", probs, info);  // another layer: ignored
  EXPECT_FALSE(cap.captured());
  cap.on_activation("layers.1.attn.probs", probs, info);
  ASSERT_TRUE(cap.captured());
  EXPECT_EQ(cap.result().tokens, 2);
  EXPECT_EQ(cap.result().ids, (std::vector<int32_t>{7, 6}));
  EXPECT_EQ(cap.result().probs, (std::vector<float>{12, 13, 14, 15}));  // b = 1, h = 1
}

// ---------------------------------------------------------------------------------------------
// Windows and token kinds

TEST(Windows, EvenlySpacedAndSeededStarts) {
  EXPECT_EQ(window_starts(100, 10, 4, std::nullopt), (std::vector<int64_t>{0, 30, 60, 90}));
  EXPECT_EQ(window_starts(100, 10, 1, std::nullopt), (std::vector<int64_t>{0}));
  const auto a = window_starts(1000, 10, 8, 42), b = window_starts(1000, 10, 8, 42), c = window_starts(1000, 10, 8, 43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (int64_t s : a) EXPECT_TRUE(s >= 0 && s <= 990);
  EXPECT_THROW(window_starts(5, 10, 2, std::nullopt), Error);
  EXPECT_THROW(window_starts(50, 10, 0, std::nullopt), Error);
}

TEST(Windows, BatchWrapsEachWindowInTheTemplate) {
  const std::vector<int32_t> tokens = {10, 11, 12, 13, 14, 15};
  SpecialTemplate t{{101}, {102}};
  const Batch b = window_batch(tokens, {0, 3}, 3, t, 0, 2);
  EXPECT_EQ(b.batch, 2);
  EXPECT_EQ(b.seq, 5);
  EXPECT_EQ(b.ids, (std::vector<int32_t>{101, 10, 11, 12, 102, 101, 13, 14, 15, 102}));
}

TEST(Windows, DefaultModelAddsBosOnly) {
  const auto tok = Tokenizer::from_dir(testing::default_model());
  const SpecialTemplate t = special_template(*tok);
  EXPECT_EQ(t.prefix, std::vector<int32_t>{1});  // <|start_story|>
  EXPECT_TRUE(t.suffix.empty());
  EXPECT_EQ(special_token_ids(*tok, t), (std::vector<int32_t>{1, 2}));  // BOS, EOS
}

TEST(TokenKinds, DelimitersArePunctuationOrWhitespaceOnly) {
  EXPECT_TRUE(is_delimiter_text("."));
  EXPECT_TRUE(is_delimiter_text(", "));
  EXPECT_TRUE(is_delimiter_text("\n"));
  EXPECT_TRUE(is_delimiter_text("\xE2\x80\x94"));  // em dash, category Pd
  EXPECT_FALSE(is_delimiter_text(""));
  EXPECT_FALSE(is_delimiter_text("a."));
  EXPECT_FALSE(is_delimiter_text("1"));
  EXPECT_EQ(visible_text("a\nb"), "a\\nb");
  EXPECT_EQ(visible_text("  "), "␣␣");
}

TEST(TokenKinds, DefaultModelTokens) {
  const auto tok = Tokenizer::from_dir(testing::default_model());
  const TokenCatalog cat(*tok, special_token_ids(*tok, special_template(*tok)));
  EXPECT_EQ(cat.kind(1), TokenKind::Special);
  // "Hello, world.\nThe end!" -> ▁ | Hello,▁ | wor | ld | .\nThe▁ | end | !
  const auto ids = tok->encode("Hello, world.\nThe end!", false).ids;
  ASSERT_EQ(ids.size(), 7u);
  EXPECT_EQ(cat.kind(ids[0]), TokenKind::Delimiter);  // a bare "▁": whitespace
  EXPECT_EQ(cat.kind(ids[1]), TokenKind::Other);      // "Hello, " holds letters
  EXPECT_EQ(cat.kind(ids[6]), TokenKind::Delimiter);  // "!"
  EXPECT_EQ(cat.text(ids[6]), "!");
}

// ---------------------------------------------------------------------------------------------
// SVG

// A minimal XML well-formedness check: every tag closes in order, attributes are quoted, and
// '&' starts an entity. Returns an empty string when fine, else what is wrong.
std::string xml_problem(const std::string& s) {
  std::vector<std::string> stack;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '&') {
      const size_t semi = s.find(';', i);
      if (semi == std::string::npos || semi - i > 8) return "bare & at " + std::to_string(i);
      i = semi + 1;
      continue;
    }
    if (s[i] == '>') return "stray > at " + std::to_string(i);
    if (s[i] != '<') {
      ++i;
      continue;
    }
    // A tag: find its end outside quoted attribute values.
    size_t j = i + 1;
    char quote = 0;
    for (; j < s.size(); ++j) {
      if (quote) {
        if (s[j] == quote) quote = 0;
        else if (s[j] == '<') return "< inside an attribute at " + std::to_string(j);
      } else if (s[j] == '"' || s[j] == '\'') {
        quote = s[j];
      } else if (s[j] == '>') {
        break;
      }
    }
    if (j >= s.size()) return "unterminated tag at " + std::to_string(i);
    const std::string tag = s.substr(i + 1, j - i - 1);
    if (tag.empty()) return "empty tag at " + std::to_string(i);
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name) return "</" + name + "> closes " + (stack.empty() ? "nothing" : stack.back());
      stack.pop_back();
    } else if (tag[0] != '?' && tag[0] != '!' && tag.back() != '/') {
      stack.push_back(tag.substr(0, tag.find_first_of(" \n\t")));
    }
    i = j + 1;
  }
  return stack.empty() ? "" : "unclosed <" + stack.back() + ">";
}

TEST(Svg, TheCheckerCatchesBrokenXml) {
  EXPECT_EQ(xml_problem("<a><b/></a>"), "");
  EXPECT_NE(xml_problem("<a><b></a>"), "");
  EXPECT_NE(xml_problem("<a>x & y</a>"), "");
  EXPECT_NE(xml_problem("<a title=\"<\"></a>"), "");
}

TEST(Svg, RangeBarChartIsWellFormedWithEscapedLabels) {
  svg::RangeBarChart c;
  c.title = "Per-channel range of <layers.1> & co";
  c.x_label = "embedding dimension";
  c.y_label = "min .. max";
  for (int i = 0; i < 64; ++i) {
    c.low.push_back(-1 - (i % 3));
    c.high.push_back(i == 17 ? 40 : 1 + (i % 2));
  }
  c.highlight = {{17, "dim 17"}};
  c.ref_lines = {{30, "outlier threshold"}};
  const std::string s = svg::range_bar_chart(c);
  EXPECT_EQ(xml_problem(s), "");
  EXPECT_NE(s.find("Per-channel range of &lt;layers.1&gt; &amp; co"), std::string::npos);
  EXPECT_NE(s.find(">dim 17</text>"), std::string::npos);
  EXPECT_NE(s.find(">embedding dimension</text>"), std::string::npos);
  EXPECT_NE(s.find(">outlier threshold</text>"), std::string::npos);
  EXPECT_NE(s.find(">40</text>"), std::string::npos);  // the top y tick reaches the outlier
  EXPECT_EQ(s.find("<layers.1>"), std::string::npos);
  EXPECT_THROW(svg::range_bar_chart(svg::RangeBarChart{}), Error);
}

TEST(Svg, LineChartAndHeatmapAreWellFormed) {
  svg::LineChart l;
  l.title = "max |x| per layer";
  l.x_label = "layer";
  l.y_label = "max |x|";
  l.x_labels = {"emb", "0", "1"};
  l.series = {{"ffn.residual_sum", {3, 358, 613}}, {"attn.norm.out", {NAN, 0.9, 2}}};
  l.log_y = true;
  const std::string ls = svg::line_chart(l);
  EXPECT_EQ(xml_problem(ls), "");
  EXPECT_NE(ls.find(">ffn.residual_sum</text>"), std::string::npos);
  EXPECT_NE(ls.find(">1000</text>"), std::string::npos);  // decade ticks up to 10^3
  EXPECT_NE(ls.find(">0.1</text>"), std::string::npos);

  svg::Heatmap h;
  h.title = "Attention";
  h.x_label = "key token";
  h.y_label = "query token";
  h.value_label = "probability";
  h.rows = h.cols = 3;
  h.values = {1, 0, 0, 0.5, 0.5, 0, 0.2, 0.3, 0.5};
  h.row_labels = h.col_labels = {"<s>", "\"a\"", "'b' & c"};
  const std::string hs = svg::heatmap(h);
  EXPECT_EQ(xml_problem(hs), "");
  EXPECT_NE(hs.find(">&lt;s&gt;</text>"), std::string::npos);
  EXPECT_NE(hs.find("&apos;b&apos; &amp; c"), std::string::npos);
  EXPECT_NE(hs.find(">key token</text>"), std::string::npos);
  EXPECT_NE(hs.find(svg::viridis(1.0)), std::string::npos);  // the cell holding 1
  h.values.pop_back();
  EXPECT_THROW(svg::heatmap(h), Error);
}

TEST(Svg, NiceTicksCoverTheRange) {
  const svg::Ticks t = svg::nice_ticks(-0.3, 613, 7);
  EXPECT_LE(t.lo, -0.3);
  EXPECT_GE(t.hi, 613);
  EXPECT_EQ(t.values.front(), t.lo);
  EXPECT_EQ(t.values.back(), t.hi);
  EXPECT_EQ(t.values[1] - t.values[0], 100);  // 613.3 / 6 ≈ 102, rounded to the 1-2-5 step 100
  EXPECT_EQ(t.lo, -100);
  EXPECT_EQ(t.hi, 700);
}

// ---------------------------------------------------------------------------------------------
// End to end on the default model (small): determinism and a self-contained report

nlohmann::json analyse_default(int threads, std::vector<std::string> globs = {}) {
  set_num_threads(threads);
  const Model model = Model::load(testing::default_model());
  const auto tok = Tokenizer::from_dir(testing::default_model());
  const SpecialTemplate t = special_template(*tok);
  const TokenCatalog cat(*tok, special_token_ids(*tok, t));
  std::vector<int32_t> tokens =
      tok->encode("Once upon a time, there was a little girl named Lily. She had a red ball. "
                  "One day, she went to the park with her mom. \"Look!\" she said. The sun was warm.\n"
                  "Tom and Sam were friends. They liked to play. Tom had a big box of toys.",
                  false)
          .ids;
  AnalysisOptions o;
  o.samples = 3;
  o.seq_len = 24;
  o.batch = 2;
  o.point_globs = std::move(globs);
  const AnalysisResult r = analyze(model, cat, t, tokens, o);
  return analysis_json(r, model.config(), cat, Provenance{"m", "d", 3, 24, std::nullopt, {}});
}

TEST(Analyze, DefaultModelResultIsDeterministicAcrossThreadCounts) {
  const nlohmann::json a = analyse_default(1), b = analyse_default(3);
  set_num_threads(0);
  EXPECT_EQ(a.dump(), b.dump());
  EXPECT_EQ(a["tokens_analysed"], 72);
  EXPECT_EQ(a["windows"]["prefix"][0]["id"], 1);
  // Every [B, T, C] point of the 2-layer model: 1 + 2 * 22 + 3 (final_norm.out, lm_head.in/out) + logits.
  EXPECT_EQ(a["points"].size(), 49u);
  EXPECT_EQ(a["attention"]["heads"].size(), 16u);
  // Position 0 is the BOS in every window, and a causal head's first row sees only it.
  for (const auto& h : a["attention"]["heads"]) EXPECT_GE(h["special_mass"].get<double>(), 1.0 / 24 - 1e-6);

  const auto plots = make_plots(a);
  ASSERT_GE(plots.size(), 5u);
  for (const Plot& p : plots) EXPECT_EQ(xml_problem(p.svg), "") << p.file;
  const std::string html = html_report(a, plots);
  EXPECT_EQ(html.find("http"), std::string::npos);  // nothing fetched, not even a namespace URL
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("Heads with the most no-op attention"), std::string::npos);
}

TEST(Analyze, PointGlobsSelectAndAMissMatchIsAnError) {
  EXPECT_TRUE(point_selected({}, "embed.out"));
  EXPECT_TRUE(point_selected({"layers.*.ffn.residual_sum"}, "layers.11.ffn.residual_sum"));
  EXPECT_FALSE(point_selected({"layers.*.ffn.residual_sum"}, "layers.1.attn.residual_sum"));
  EXPECT_TRUE(point_selected({"nope", "embed.*"}, "embed.out"));
  const nlohmann::json some = analyse_default(0, {"layers.*.ffn.residual_sum", "logits"});
  ASSERT_EQ(some["points"].size(), 3u);
  EXPECT_EQ(some["points"][2]["name"], "logits");
  EXPECT_THROW(analyse_default(0, {"no.such.point"}), Error);
}

}  // namespace
}  // namespace tquant::analysis
