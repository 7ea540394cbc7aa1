// Every expected value is worked out by hand in the comment beside it.
#include "eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"

namespace tquant {
namespace {

using V = std::vector<float>;

void expect_error(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "expected tquant::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// pred vs label: TP at 0 and 2, FN at 1, FP at 3, TN at 4.
const V kPred = {1, 0, 1, 1, 0};
const V kLabel = {1, 1, 1, 0, 0};

TEST(Metrics, Accuracy) {
  EXPECT_DOUBLE_EQ(accuracy(kPred, kLabel), 3.0 / 5.0);
  EXPECT_DOUBLE_EQ(accuracy({0, 1}, {0, 1}), 1.0);
  EXPECT_DOUBLE_EQ(accuracy({1, 0}, {0, 1}), 0.0);
}

TEST(Metrics, F1Binary) {
  // 2TP / (2TP + FP + FN) = 4 / 6
  EXPECT_DOUBLE_EQ(f1_binary(kPred, kLabel), 2.0 / 3.0);
  // Precision 1/1, recall 1/3: 2*(1*1/3)/(1+1/3) = 0.5
  EXPECT_DOUBLE_EQ(f1_binary({1, 0, 0}, {1, 1, 1}), 0.5);
  // No positives anywhere: sklearn's zero_division default gives 0.
  EXPECT_DOUBLE_EQ(f1_binary({0, 0}, {0, 0}), 0.0);
  // The positive class is 1, so swapping roles changes the score: TP=0 here.
  EXPECT_DOUBLE_EQ(f1_binary({0, 1}, {1, 0}), 0.0);
  expect_error([] { f1_binary({2, 0}, {1, 0}); }, "binary");
}

TEST(Metrics, MatthewsTwoByTwo) {
  // TP=2 TN=1 FP=1 FN=1: (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6
  EXPECT_DOUBLE_EQ(matthews_corr(kPred, kLabel), 1.0 / 6.0);
  // TP=6 FN=2 FP=1 TN=3: (18 - 2) / sqrt((6+1)(6+2)(3+1)(3+2)) = 16/sqrt(1120)
  const V pred = {1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0};
  const V label = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
  EXPECT_NEAR(matthews_corr(pred, label), 0.47809144373375745, 1e-15);
  EXPECT_DOUBLE_EQ(matthews_corr({0, 1, 1, 0}, {0, 1, 1, 0}), 1.0);
  EXPECT_DOUBLE_EQ(matthews_corr({1, 0, 0, 1}, {0, 1, 1, 0}), -1.0);
}

TEST(Metrics, MatthewsDegenerateIsZeroLikeSklearn) {
  EXPECT_DOUBLE_EQ(matthews_corr({1, 1, 1, 1}, {0, 1, 1, 0}), 0.0);  // one predicted class
  EXPECT_DOUBLE_EQ(matthews_corr({0, 1, 1, 0}, {1, 1, 1, 1}), 0.0);  // one true class
}

TEST(Metrics, MatthewsMulticlass) {
  // sklearn's form: c=4 correct, s=6, true counts t=(2,2,2), predicted p=(2,3,1):
  // (c*s - t.p) / sqrt((s^2 - p.p)(s^2 - t.t)) = (24 - 12) / sqrt((36-14)(36-12)) = 12/sqrt(528)
  EXPECT_NEAR(matthews_corr({0, 1, 1, 1, 2, 0}, {0, 0, 1, 1, 2, 2}), 0.5222329678670935, 1e-15);
}

TEST(Metrics, Pearson) {
  // x=(1,2,3,4) y=(2,4,5,9): dx=(-1.5,-.5,.5,1.5) dy=(-3,-1,0,4); Sxy=11 Sxx=5 Syy=26
  EXPECT_NEAR(pearson({1, 2, 3, 4}, {2, 4, 5, 9}), 11.0 / std::sqrt(130.0), 1e-15);
  EXPECT_NEAR(pearson({1, 2, 3}, {10, 20, 30}), 1.0, 1e-15);
  EXPECT_NEAR(pearson({1, 2, 3}, {3, 2, 1}), -1.0, 1e-15);
  // A constant side has no correlation; SciPy returns NaN.
  EXPECT_TRUE(std::isnan(pearson({2, 2, 2}, {1, 2, 3})));
  expect_error([] { pearson({1, NAN}, {1, 2}); }, "not finite");
}

TEST(Metrics, SpearmanAveragesTiedRanks) {
  // ranks x=(1,2.5,2.5,4) y=(1,3,2,4), both mean 2.5: dx=(-1.5,0,0,1.5) dy=(-1.5,.5,-.5,1.5);
  // Sxy=4.5 Sxx=4.5 Syy=5 -> 4.5/sqrt(22.5) = sqrt(0.9)
  EXPECT_NEAR(spearman({1, 2, 2, 3}, {1, 3, 2, 4}), std::sqrt(0.9), 1e-15);
  // Monotone but not linear: ranks agree exactly.
  EXPECT_NEAR(spearman({1, 2, 3, 4}, {1, 10, 100, 1000}), 1.0, 1e-15);
  EXPECT_NEAR(spearman({4, 3, 2, 1}, {1, 10, 100, 1000}), -1.0, 1e-15);
  // Order of the input must not matter, only the pairing.
  EXPECT_NEAR(spearman({2, 3, 1, 2}, {3, 4, 1, 2}), std::sqrt(0.9), 1e-15);
}

TEST(Metrics, InputChecks) {
  expect_error([] { accuracy({1, 0}, {1}); }, "2 predictions but 1 labels");
  expect_error([] { accuracy({}, {}); }, "no examples");
  expect_error([] { accuracy({0.5f}, {1}); }, "not a class id");
  expect_error([] { matthews_corr({1}, {-1}); }, "not a class id");
}

TEST(GlueMetrics, MrpcScoreIsMeanOfAccuracyAndF1) {
  const GlueScore s = glue_metrics(GlueTask::MRPC, kPred, kLabel);
  EXPECT_DOUBLE_EQ(s.metrics.at("accuracy"), 0.6);
  EXPECT_DOUBLE_EQ(s.metrics.at("f1"), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.score, (0.6 + 2.0 / 3.0) / 2.0);
  EXPECT_EQ(s.score_name, "accuracy_f1_mean");
}

TEST(GlueMetrics, StsbScoreIsMeanOfPearsonAndSpearman) {
  // Pearson: x=(1,2,2,5) mean 2.5, dx=(-1.5,-.5,-.5,2.5); y as above; Sxy=6 Sxx=9 Syy=5
  // -> 6/sqrt(45). Spearman: x ranks (1,2.5,2.5,4) as in the tie test -> sqrt(0.9).
  const GlueScore s = glue_metrics(GlueTask::STSB, {1, 2, 2, 5}, {1, 3, 2, 4});
  EXPECT_NEAR(s.metrics.at("pearson"), 6.0 / std::sqrt(45.0), 1e-15);
  EXPECT_NEAR(s.metrics.at("spearman"), std::sqrt(0.9), 1e-15);
  EXPECT_NEAR(s.score, 0.9215552445252149, 1e-15);
  EXPECT_EQ(s.score_name, "pearson_spearman_mean");
}

TEST(GlueMetrics, SingleMetricTasks) {
  const GlueScore cola = glue_metrics(GlueTask::COLA, kPred, kLabel);
  EXPECT_DOUBLE_EQ(cola.score, 1.0 / 6.0);
  EXPECT_EQ(cola.score_name, "matthews_corr");
  EXPECT_EQ(cola.metrics.size(), 1u);
  for (GlueTask t : {GlueTask::SST2, GlueTask::QNLI, GlueTask::RTE, GlueTask::WNLI}) {
    const GlueScore s = glue_metrics(t, kPred, kLabel);
    EXPECT_DOUBLE_EQ(s.score, 0.6) << glue_task_name(t);
    EXPECT_EQ(s.score_name, "accuracy");
    EXPECT_DOUBLE_EQ(s.metrics.at("accuracy"), 0.6);
  }
}

TEST(GlueMetrics, RejectsClassIdsTheTaskLacks) {
  expect_error([] { glue_metrics(GlueTask::RTE, {2, 0}, {1, 0}); }, "ids 0..1");
  expect_error([] { glue_metrics(GlueTask::SST2, {1, 0}, {1}); }, "2 predictions but 1 labels");
}

}  // namespace
}  // namespace tquant
