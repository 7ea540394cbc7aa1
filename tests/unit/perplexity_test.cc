#include "eval/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "eval/logits_file.h"
#include "test_paths.h"

namespace tquant {
namespace {

int64_t scored(const std::vector<Window>& ws) {
  int64_t n = 0;
  for (const auto& w : ws) n += w.length - w.score_from;
  return n;
}

TEST(PlanWindows, NonOverlappingScoresAllButTheFirstOfEachWindow) {
  PerplexityOptions o;
  o.ctx = 4;
  o.stride = 4;
  const auto ws = plan_windows(10, o);
  ASSERT_EQ(ws.size(), 3u);
  EXPECT_EQ(ws[0].begin, 0);
  EXPECT_EQ(ws[0].length, 4);
  EXPECT_EQ(ws[0].score_from, 1);
  EXPECT_EQ(ws[1].begin, 4);
  EXPECT_EQ(ws[1].score_from, 1);
  EXPECT_EQ(ws[2].begin, 8);
  EXPECT_EQ(ws[2].length, 2);
  EXPECT_EQ(scored(ws), 10 - 3);
}

TEST(PlanWindows, SlidingWindowScoresEveryTokenButTheFirstOnce) {
  PerplexityOptions o;
  o.ctx = 4;
  o.stride = 2;
  const auto ws = plan_windows(10, o);
  // [0,4) scores 1..3; [2,6) scores 4,5; [4,8) scores 6,7; [6,10) scores 8,9.
  ASSERT_EQ(ws.size(), 4u);
  EXPECT_EQ(ws[1].begin, 2);
  EXPECT_EQ(ws[1].score_from, 2);
  EXPECT_EQ(ws[3].begin, 6);
  EXPECT_EQ(ws[3].length, 4);
  EXPECT_EQ(scored(ws), 9);
}

TEST(PlanWindows, BosMakesEveryTextTokenScored) {
  PerplexityOptions o;
  o.ctx = 4;
  o.stride = 4;
  o.bos = true;
  const auto ws = plan_windows(10, o);
  ASSERT_EQ(ws.size(), 4u);  // 3 text tokens per window
  EXPECT_EQ(ws[0].score_from, 0);
  EXPECT_EQ(ws[1].begin, 3);
  EXPECT_EQ(scored(ws), 10);
}

TEST(PlanWindows, RejectsBadOptions) {
  PerplexityOptions o;
  o.ctx = 4;
  o.stride = 5;
  EXPECT_THROW(plan_windows(10, o), Error);
  o.stride = 0;
  EXPECT_THROW(plan_windows(10, o), Error);
}

std::vector<int32_t> sample_tokens(int n) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = 3 + (i * 7919 + 13) % 2000;
  return t;
}

// The perplexity must equal exp(mean NLL) computed directly from one forward pass per window.
TEST(Perplexity, MatchesDirectComputationAndIsBatchInvariant) {
  const Model model = Model::load(testing::default_model());
  const auto tokens = sample_tokens(70);
  PerplexityOptions o;
  o.ctx = 32;
  o.stride = 32;
  double nll = 0;
  int64_t n = 0;
  for (const Window& w : plan_windows(70, o)) {
    std::vector<int32_t> ids(tokens.begin() + w.begin, tokens.begin() + w.begin + w.length);
    const Tensor logits = model.forward(Batch::single(ids));
    for (int64_t j = w.score_from; j < w.length; ++j) {
      std::vector<float> lp(2048);
      log_softmax(logits.data() + (j - 1) * 2048, 2048, lp.data());
      nll -= lp[ids[j]];
      ++n;
    }
  }
  o.batch = 1;
  const PerplexityResult one = evaluate_perplexity(model, tokens, o);
  o.batch = 3;
  const PerplexityResult three = evaluate_perplexity(model, tokens, o);
  EXPECT_EQ(one.tokens_scored, n);
  EXPECT_NEAR(one.nll, nll / n, 1e-6);
  EXPECT_NEAR(three.nll, one.nll, 1e-6);
  EXPECT_NEAR(one.ppl, std::exp(nll / n), 1e-4 * one.ppl);
  EXPECT_GT(one.nll_stderr, 0);
}

TEST(Kld, ZeroAgainstItselfAndPositiveAgainstAnotherModel) {
  const Model model = Model::load(testing::default_model());
  const auto tokens = sample_tokens(100);
  PerplexityOptions o;
  o.ctx = 50;
  o.stride = 50;
  const auto file = testing::scratch("kld") / "fp.logits";
  LogitsWriter writer(file, scoring_protocol(50, 50, false));
  evaluate_perplexity(model, tokens, o, nullptr, &writer);
  writer.finish();

  KldComparer same(file, scoring_protocol(50, 50, false));
  const PerplexityResult r = evaluate_perplexity(model, tokens, o, nullptr, &same);
  const KldResult k = same.finish();
  EXPECT_EQ(k.tokens, r.tokens_scored);
  EXPECT_LT(k.mean, 1e-5);  // only fp16 storage rounding separates the two
  EXPECT_DOUBLE_EQ(k.top1_agreement, 1.0);
  EXPECT_NEAR(k.ppl_reference, r.ppl, 1e-3 * r.ppl);

  // Another context length: refused, not silently wrong.
  EXPECT_THROW(KldComparer(file, scoring_protocol(25, 25, false)), Error);
}

}  // namespace
}  // namespace tquant
