// Range estimators: hand arithmetic for min-max/EMA/percentile, properties of the searches (MSE
// clips an outlier and beats min-max; golden-section lands near the grid; cross-entropy clips the
// irrelevant low logits), every optimised search against its plain reference, the bounded sample,
// thread-count independence and the error paths.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "expect_error.h"
#include "quant/channel_groups.h"
#include "quant/cross_entropy_loss.h"
#include "quant/fake_quant.h"
#include "quant/group_index.h"
#include "quant/percentile.h"
#include "quant/range_estimator.h"
#include "quant/range_search.h"
#include "quant/range_search_ref.h"
#include "quant/reservoir.h"
#include "quant/sorted_sample.h"

namespace tquant {
namespace {

using testing::expect_error;

std::unique_ptr<RangeObserver> observer(const std::string& name, Grouping g = per_tensor(),
                                        std::function<void(ObserverOptions&)> tweak = nullptr) {
  ObserverOptions o;
  o.point = "test.point";
  o.grouping = std::move(g);
  if (tweak) tweak(o);
  return make_range_observer(name, o);
}

std::vector<float> gaussian(int64_t n, uint32_t seed, float mean = 0.f, float sd = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(mean, sd);
  std::vector<float> x(n);
  for (float& v : x) v = g(rng);
  return x;
}

double sq_error_of(const std::vector<float>& x, Range r, int bits, bool sym) {
  return sq_error_ref(x, scale_zero_from_range(r, bits, sym, "t"), bits, sym);
}

TEST(MinMax, ThreeBatchesHandComputed) {
  const std::vector<std::vector<float>> batches = {{-1.f, 2.f, 0.f}, {-3.f, 1.f, 0.5f}, {0.5f, 4.f, 1.f}};
  auto run = [&](const std::string& name) {
    auto o = observer(name);
    for (const auto& b : batches) o->observe(b.data(), 1, 3);
    EXPECT_EQ(o->batches(), 3);
    return o->ranges(8, false)[0];
  };
  const Range current = run("current_minmax");  // the last batch only
  EXPECT_EQ(current.lo, 0.5f);
  EXPECT_EQ(current.hi, 4.f);
  const Range all = run("minmax");  // over all batches
  EXPECT_EQ(all.lo, -3.f);
  EXPECT_EQ(all.hi, 4.f);
  // EMA, momentum 0.9, initialised by batch 1 ([-1, 2]):
  //   batch 2: lo = 0.9(-1) + 0.1(-3) = -1.2,    hi = 0.9(2) + 0.1(1) = 1.9
  //   batch 3: lo = 0.9(-1.2) + 0.1(0.5) = -1.03, hi = 0.9(1.9) + 0.1(4) = 2.11
  const Range running = run("running_minmax");
  EXPECT_NEAR(running.lo, -1.03f, 1e-6);
  EXPECT_NEAR(running.hi, 2.11f, 1e-6);
  // finalize() turns the range into parameters: [-1.03, 2.11] at 8 bits, s = 3.14/255.
  auto o = observer("running_minmax");
  for (const auto& b : batches) o->observe(b.data(), 1, 3);
  const QuantParams p = o->finalize(8, false);
  EXPECT_NEAR(p.scale[0], 3.14 / 255, 1e-7);
  EXPECT_EQ(p.zero_point[0], std::nearbyint(1.03f / p.scale[0]));  // round(83.6...) = 84
  EXPECT_EQ(p.zero_point[0], 84.f);
}

TEST(MinMax, PerChannelAndPerGroupRanges) {
  // Weight [2, 4]: per-row ranges, and groups of 2 columns.
  const std::vector<float> w = {1.f, -2.f, 3.f, 0.5f, -4.f, 0.f, 0.25f, 8.f};
  auto rows = observer("minmax", per_channel(0));
  rows->observe(w.data(), 2, 4);
  const std::vector<Range> r = rows->ranges(8, true);
  EXPECT_EQ(r[0].lo, -2.f);
  EXPECT_EQ(r[0].hi, 3.f);
  EXPECT_EQ(r[1].lo, -4.f);
  EXPECT_EQ(r[1].hi, 8.f);
  // Symmetric 8 bits: s = absmax / 127 per row.
  const QuantParams p = rows->finalize(8, true);
  EXPECT_FLOAT_EQ(p.scale[0], 3.f / 127);
  EXPECT_FLOAT_EQ(p.scale[1], 8.f / 127);
  auto groups = observer("minmax", per_group(2));
  groups->observe(w.data(), 2, 4);
  const std::vector<Range> g = groups->ranges(4, false);
  ASSERT_EQ(g.size(), 4u);
  EXPECT_EQ(g[0].lo, -2.f);  // row 0, columns 0-1
  EXPECT_EQ(g[1].hi, 3.f);   // row 0, columns 2-3
  EXPECT_EQ(g[2].lo, -4.f);  // row 1, columns 0-1
  EXPECT_EQ(g[3].lo, 0.25f);
  EXPECT_EQ(g[3].hi, 8.f);
  // Activation channels (columns) over all tokens of all batches: [4, 2] then [2, 2].
  auto cols = observer("minmax", per_channel(1));
  cols->observe(w.data(), 4, 2);
  cols->observe(w.data(), 2, 2);
  const std::vector<Range> c = cols->ranges(8, false);
  EXPECT_EQ(c[0].lo, -4.f);  // column 0: 1, 3, -4, 0.25
  EXPECT_EQ(c[0].hi, 3.f);
  EXPECT_EQ(c[1].lo, -2.f);  // column 1: -2, 0.5, 0, 8
  EXPECT_EQ(c[1].hi, 8.f);
}

TEST(MinMax, ColumnGroupsNeedTheSameColumnsAndRowGroupsTheSameRows) {
  const std::vector<float> x(12, 1.f);
  auto cols = observer("minmax", per_channel(1));
  cols->observe(x.data(), 3, 4);
  expect_error([&] { cols->observe(x.data(), 4, 3); }, {"test.point", "3 columns", "first had 4"});
  auto rows = observer("mse", per_channel(0));
  rows->observe(x.data(), 3, 4);
  expect_error([&] { rows->observe(x.data(), 4, 3); }, {"test.point", "4 rows", "first had 3"});
  // Per-tensor observers accept any shape.
  auto t = observer("percentile");
  t->observe(x.data(), 3, 4);
  t->observe(x.data(), 6, 2);
  EXPECT_EQ(t->batches(), 2);
}

TEST(MinMax, GroupMinMaxMatchesReference) {
  const int64_t rows = 64, cols = 96;
  const std::vector<float> x = gaussian(rows * cols, 4);
  for (const Grouping& g : {per_tensor(), per_channel(0), per_channel(1), per_group(32),
                            per_embedding_group(contiguous_channel_groups(cols, 7))}) {
    const GroupIndex index(g, rows, cols, "t");
    const std::vector<Range> a = group_min_max(x.data(), index, "t"), b = group_min_max_ref(x.data(), index, "t");
    ASSERT_EQ(a.size(), b.size());
    for (size_t k = 0; k < a.size(); ++k) {
      EXPECT_EQ(a[k].lo, b[k].lo);
      EXPECT_EQ(a[k].hi, b[k].hi);
    }
  }
}

TEST(Percentile, NumpyLinearInterpolation) {
  // h = (n - 1) p / 100: [1, 2, 3, 4] at p = 50 -> h = 1.5 -> 2.5; p = 25 -> h = 0.75 -> 1.75.
  const std::vector<float> a = {1.f, 2.f, 3.f, 4.f};
  EXPECT_DOUBLE_EQ(percentile_of_sorted(a, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile_of_sorted(a, 25), 1.75);
  EXPECT_DOUBLE_EQ(percentile_of_sorted(a, 100), 4.0);
  EXPECT_DOUBLE_EQ(percentile_of_sorted(a, 0), 1.0);
}

std::vector<float> shuffled_0_to_9999() {
  std::vector<float> v(10000);
  std::iota(v.begin(), v.end(), 0.f);
  std::shuffle(v.begin(), v.end(), std::mt19937(17));
  return v;
}

TEST(Percentile, ZeroTo9999) {
  // n = 10000 values 0..9999: P99.99 -> h = 9999 * 0.9999 = 9998.0001 -> 9998.0001;
  // P0.01 -> h = 9999 * 0.0001 = 0.9999 -> 0.9999.
  const std::vector<float> v = shuffled_0_to_9999();
  auto o = observer("percentile");
  for (int b = 0; b < 10; ++b) o->observe(v.data() + b * 1000, 10, 100);
  const Range r = o->ranges(8, false)[0];
  EXPECT_FLOAT_EQ(r.hi, 9998.0001f);
  EXPECT_FLOAT_EQ(r.lo, 0.9999f);
  // With p = 99 (h = 9899.01): 9899.01 and, below, h = 99.99 -> 99.99.
  auto o99 = observer("percentile", per_tensor(), [](ObserverOptions& opt) { opt.percentile = 99; });
  o99->observe(v.data(), 100, 100);
  EXPECT_FLOAT_EQ(o99->ranges(8, false)[0].hi, 9899.01f);
  EXPECT_FLOAT_EQ(o99->ranges(8, false)[0].lo, 99.99f);
}

TEST(Percentile, ExtremePercentilesStayExactBeyondTheBudget) {
  // A budget of 64 values: 16 per exact tail, 32 in the sample. P99.99 needs ranks 9998 and
  // 9999, which the top tail still holds, so it is exact; P80 (h = 7999.2) is beyond the tails
  // and comes from the 32-value uniform sample — an estimate.
  const std::vector<float> v = shuffled_0_to_9999();
  auto small = [](ObserverOptions& o) {
    o.sample_budget = 64;
    o.min_group_sample = 64;
  };
  auto o = observer("percentile", per_tensor(), small);
  for (int b = 0; b < 10; ++b) o->observe(v.data() + b * 1000, 1, 1000);
  EXPECT_FLOAT_EQ(o->ranges(8, false)[0].hi, 9998.0001f);
  EXPECT_FLOAT_EQ(o->ranges(8, false)[0].lo, 0.9999f);
  auto o80 = observer("percentile", per_tensor(), [&](ObserverOptions& opt) {
    small(opt);
    opt.percentile = 80;
  });
  for (int b = 0; b < 10; ++b) o80->observe(v.data() + b * 1000, 1, 1000);
  EXPECT_NEAR(o80->ranges(8, false)[0].hi, 7999.2f, 1500.f);  // 32 samples: ~±700 sd
}

TEST(Percentile, StreamTailsMatchSortingEverything) {
  std::vector<float> v = gaussian(20000, 8);
  for (size_t i = 0; i < v.size(); i += 7) v[i] = std::round(v[i]);  // plenty of ties
  StreamTails t(50);
  for (size_t i = 0; i < v.size(); i += 1000) t.add(v.data() + i, 1000);
  std::vector<float> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  for (double p : {0.0, 0.01, 0.1, 0.2, 99.8, 99.9, 99.99, 100.0}) {
    const auto got = t.percentile(p);
    ASSERT_TRUE(got.has_value()) << p;
    EXPECT_DOUBLE_EQ(*got, percentile_of_sorted(sorted, p)) << p;
  }
  EXPECT_FALSE(t.percentile(50.0).has_value());  // the median is in neither tail
}

TEST(Reservoir, ExactWhenSmallBoundedAndDeterministic) {
  std::vector<float> v(1000);
  std::iota(v.begin(), v.end(), 0.f);
  Reservoir small(2000, 1, 1);
  small.add(v.data(), 600);
  small.add(v.data() + 600, 400);
  EXPECT_TRUE(small.exact());
  EXPECT_EQ(small.data(), v);  // the whole stream, in order
  Reservoir a(100, 1, 42), b(100, 1, 42), c(100, 1, 43);
  for (int rep = 0; rep < 50; ++rep) {
    a.add(v.data(), 1000);
    b.add(v.data(), 1000);
    c.add(v.data(), 1000);
  }
  EXPECT_EQ(a.size(), 100);
  EXPECT_EQ(a.seen(), 50000);
  EXPECT_FALSE(a.exact());
  EXPECT_EQ(a.data(), b.data());  // same seed, same stream: same sample
  EXPECT_NE(a.data(), c.data());
  // Uniform: the mean of 100 draws from 0..999 is 499.5 ± 29 (sd 288.7 / 10).
  const double mean = std::accumulate(a.data().begin(), a.data().end(), 0.0) / 100;
  EXPECT_NEAR(mean, 499.5, 120);
  // Rows: whole rows are kept together.
  Reservoir rows(3, 4, 5);
  std::vector<float> m(40);
  std::iota(m.begin(), m.end(), 0.f);
  rows.add(m.data(), 10);
  ASSERT_EQ(rows.size(), 3);
  for (int64_t i = 0; i < 3; ++i) {
    const float first = rows.data()[i * 4];
    EXPECT_EQ(std::fmod(first, 4.f), 0.f);
    for (int c = 1; c < 4; ++c) EXPECT_EQ(rows.data()[i * 4 + c], first + c);
  }
}

// Uniform [-1, 1] body plus a few outliers at ±4: at 4 bits min-max spends its 16 levels on the
// outliers (s = 4/7 ≈ 0.57, error ≈ n s²/12 ≈ 0.027 n) while clipping near 1 (s ≈ 1/7, error
// ≈ 0.0017 n plus (4 - 1)² per outlier) is far better.
std::vector<float> body_with_outliers() {
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(20000);
  for (float& v : x) v = u(rng);
  x[100] = 4.f;
  x[5000] = -4.f;
  x[9000] = 3.9f;
  return x;
}

TEST(Mse, GridClipsAnOutlierAndBeatsMinMax) {
  const std::vector<float> x = body_with_outliers();
  for (bool sym : {true, false}) {
    auto mse = observer("mse");
    mse->observe(x.data(), 100, 200);
    const Range r = mse->ranges(4, sym)[0];
    EXPECT_LT(r.hi, 4.f) << sym;
    EXPECT_GT(r.hi, 0.8f) << sym;
    EXPECT_LT(r.hi, 1.5f) << sym;
    const double err_mse = sq_error_of(x, r, 4, sym), err_minmax = sq_error_of(x, {-4.f, 4.f}, 4, sym);
    EXPECT_LT(err_mse, 0.25 * err_minmax) << sym;
  }
}

TEST(Mse, SortedSampleStrategiesMatchTheReference) {
  std::vector<float> x = gaussian(30000, 2);
  for (size_t i = 0; i < x.size(); i += 3) x[i] = std::round(x[i] * 8) / 8;  // exact ties too
  const SortedSample s(x);
  for (int bits : {2, 4, 8, 16})
    for (bool sym : {false, true})
      for (Range r : {Range{-1.f, 2.f}, Range{-5.f, 5.f}, Range{0.f, 0.5f}, Range{-0.01f, 0.02f}}) {
        const ScaleZero sz = scale_zero_from_range(r, bits, sym, "t");
        const double ref = sq_error_ref(x, sz, bits, sym);
        EXPECT_NEAR(s.sq_error_direct(sz, bits, sym), ref, 1e-9 * ref) << bits << sym;
        EXPECT_NEAR(s.sq_error_runs(sz, bits, sym), ref, 1e-9 * ref + 1e-12) << bits << sym;
      }
}

TEST(Mse, GridMatchesTheReferenceSearch) {
  const std::vector<std::vector<float>> datasets = {
      gaussian(2000, 3), gaussian(2000, 4, 0.7f, 0.5f),  // two-sided, skewed
      [] {
        auto v = gaussian(1500, 5);
        for (float& e : v) e = std::fabs(e);  // one-sided >= 0
        return v;
      }(),
      [] {
        auto v = gaussian(1500, 6);
        for (float& e : v) e = -std::fabs(e);  // one-sided <= 0
        return v;
      }(),
      body_with_outliers()};
  for (const auto& x : datasets)
    for (int bits : {3, 4, 8})
      for (bool sym : {false, true}) {
        auto o = observer("mse");
        o->observe(x.data(), 1, static_cast<int64_t>(x.size()));
        const Range got = o->ranges(bits, sym)[0];
        const RefSearchResult want = mse_grid_ref(x, bits, sym, 100);
        EXPECT_EQ(got.lo, want.range.lo) << bits << " " << sym;
        EXPECT_EQ(got.hi, want.range.hi) << bits << " " << sym;
      }
}

TEST(Mse, GoldenSectionLandsNearTheGrid) {
  const std::vector<float> sym_data = gaussian(50000, 9), skewed = gaussian(50000, 10, 1.f, 1.f);
  for (const auto* x : {&sym_data, &skewed})
    for (int bits : {4, 8})
      for (bool sym : {true, false}) {
        auto grid = observer("mse"), golden = observer("mse_golden");
        grid->observe(x->data(), 100, 500);
        golden->observe(x->data(), 100, 500);
        const Range rg = grid->ranges(bits, sym)[0], rs = golden->ranges(bits, sym)[0];
        const double lg = sq_error_of(*x, rg, bits, sym), ls = sq_error_of(*x, rs, bits, sym);
        // Within 2% of the grid's loss, and the range within 10% of the grid's width (the loss
        // is flat near its minimum at 4 bits, so the widths can differ more than the losses).
        EXPECT_LT(ls, lg * 1.02) << bits << " " << sym;
        EXPECT_NEAR(rs.hi - rs.lo, rg.hi - rg.lo, 0.10 * (rg.hi - rg.lo)) << bits << " " << sym;
      }
}

TEST(Mse, GoldenSectionFindsTheMinimumOfAParabola) {
  const ScalarMin m = golden_section([](double x) { return (x - 0.3) * (x - 0.3) + 2; }, -1, 4, 1e-6);
  EXPECT_NEAR(m.x, 0.3, 1e-5);
  EXPECT_NEAR(m.f, 2.0, 1e-10);
}

TEST(Mse, CandidateGridFollowsTheTable) {
  // Two-sided asymmetric, 4 bits: S = 2^4/4 = 4 shifts each way (k = 0, 1, -1, 2, -2, 3, -3),
  // 10 extents: 70 candidates; the last extent unshifted is plain min-max [-2, 1].
  const SearchDomain d{-2.f, 1.f, 4, false};
  EXPECT_EQ(max_shift_steps(4), 4);
  EXPECT_EQ(max_shift_steps(16), 64);
  const std::vector<Range> c = grid_candidates(d, 10);
  ASSERT_EQ(c.size(), 70u);
  // i = 1: r = 0.2, Δ = 0.4/15; k = 1 shifts to [-0.2 + Δ, 0.2 + Δ].
  EXPECT_FLOAT_EQ(c[1].lo, -0.2f + 0.4f / 15);
  EXPECT_FLOAT_EQ(c[1].hi, 0.2f + 0.4f / 15);
  EXPECT_EQ(c[63].lo, -2.f);
  EXPECT_EQ(c[63].hi, 1.f);
  // One-sided data: [0, r] only; symmetric: [-r, r]; all-zero data: the one candidate [0, 0].
  EXPECT_EQ(grid_candidates({0.f, 3.f, 8, false}, 3)[0].lo, 0.f);
  EXPECT_EQ(grid_candidates({0.f, 3.f, 8, false}, 3)[0].hi, 1.f);
  EXPECT_EQ(grid_candidates({-3.f, 0.f, 8, false}, 3)[2].lo, -3.f);
  EXPECT_EQ(grid_candidates({-1.f, 3.f, 8, true}, 3)[0].lo, -1.f);
  EXPECT_EQ(grid_candidates({0.f, 0.f, 8, false}, 100).size(), 1u);
}

TEST(Mse, AllZeroDataGivesTheZeroRange) {
  const std::vector<float> z(64, 0.f);
  for (const char* name : {"mse", "mse_golden", "percentile", "cross_entropy"}) {
    auto o = observer(name);
    o->observe(z.data(), 8, 8);
    const QuantParams p = o->finalize(8, false);
    EXPECT_EQ(p.scale[0], kZeroRangeScale) << name;
  }
}

// Logit rows: most classes in [-10, 0], the winners near +5, and a few hopeless classes at -60.
std::vector<float> logits(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-10.f, 0.f);
  std::vector<float> x(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      float v = u(rng);
      if (c == r % cols) v = 5.f + u(rng) / 10.f;
      if (c == (r * 7 + 3) % cols) v = -60.f;
      x[r * cols + c] = v;
    }
  return x;
}

TEST(CrossEntropy, LossEqualsReferenceCrossEntropyMinusEntropy) {
  const int64_t rows = 40, cols = 30;
  const std::vector<float> x = logits(rows, cols, 1);
  std::vector<int32_t> all(cols), some = {0, 3, 4, 17};
  std::iota(all.begin(), all.end(), 0);
  const double entropy = softmax_entropy_ref(x.data(), rows, cols);
  for (const auto* cs : {&all, &some})
    for (int bits : {3, 8})
      for (Range r : {Range{-60.f, 5.5f}, Range{-10.f, 5.f}, Range{-2.f, 2.f}}) {
        const ScaleZero sz = scale_zero_from_range(r, bits, false, "t");
        const CrossEntropyGroup g(x.data(), rows, cols, *cs);
        const double kl = g.loss(sz, bits, false);
        const double ce = cross_entropy_ref(x.data(), rows, cols, *cs, sz, bits, false);
        EXPECT_NEAR(kl, ce - entropy, 1e-9 * std::max(1.0, ce)) << bits;
        EXPECT_GE(kl, 0.0);
      }
}

TEST(CrossEntropy, MatchesTheReferenceSearchAndClipsHopelessLogits) {
  const int64_t rows = 48, cols = 40;
  const std::vector<float> x = logits(rows, cols, 2);
  for (int bits : {3, 4})
    for (bool sym : {false, true}) {
      auto o = observer("cross_entropy");
      o->observe(x.data(), rows, cols);
      const Range got = o->ranges(bits, sym)[0];
      const RefSearchResult want = cross_entropy_grid_ref(x, rows, cols, bits, sym, 100);
      EXPECT_EQ(got.lo, want.range.lo) << bits << " " << sym;
      EXPECT_EQ(got.hi, want.range.hi) << bits << " " << sym;
      if (!sym) {
        // The -60 logits carry ~e^-65 of the probability: spending levels on them is waste.
        EXPECT_GT(got.lo, -60.f) << bits;
      }
    }
}

TEST(Estimators, EveryStaticGranularityAndRangesInsideTheData) {
  const int64_t rows = 32, cols = 24;
  const std::vector<float> a = gaussian(rows * cols, 30), b = gaussian(rows * cols, 31, 0.2f, 2.f);
  const std::vector<Grouping> groupings = {per_tensor(), per_channel(0), per_channel(1), per_group(8),
                                           per_embedding_group(contiguous_channel_groups(cols, 5))};
  for (const char* name : {"current_minmax", "minmax", "running_minmax", "mse", "mse_golden", "percentile",
                           "cross_entropy"})
    for (const Grouping& g : groupings) {
      auto o = observer(name, g);
      o->observe(a.data(), rows, cols);
      o->observe(b.data(), rows, cols);
      auto all = observer("minmax", g);
      all->observe(a.data(), rows, cols);
      all->observe(b.data(), rows, cols);
      const std::vector<Range> r = o->ranges(6, false), bound = all->ranges(6, false);
      ASSERT_EQ(r.size(), static_cast<size_t>(group_count(g, rows, cols, "t")));
      for (size_t k = 0; k < r.size(); ++k) {
        EXPECT_LE(r[k].lo, r[k].hi);
        EXPECT_GE(r[k].lo, bound[k].lo) << name << " " << granularity_name(g.granularity);
        EXPECT_LE(r[k].hi, bound[k].hi) << name << " " << granularity_name(g.granularity);
      }
      const QuantParams p = o->finalize(6, true);
      std::vector<float> y = a;
      fake_quantize(y.data(), rows, cols, p, "t");  // the parameters fit the tensor
    }
}

TEST(Estimators, SampledEstimatorsSeeEverythingWithLittleData) {
  // Three batches of 3000 values stay under the budget: the observer must equal the reference
  // search over the concatenated data.
  std::vector<float> all;
  auto o = observer("mse");
  for (uint32_t seed : {40u, 41u, 42u}) {
    const std::vector<float> b = gaussian(3000, seed, 0.3f);
    o->observe(b.data(), 30, 100);
    all.insert(all.end(), b.begin(), b.end());
  }
  const RefSearchResult want = mse_grid_ref(all, 5, false, 100);
  EXPECT_EQ(o->ranges(5, false)[0].lo, want.range.lo);
  EXPECT_EQ(o->ranges(5, false)[0].hi, want.range.hi);
}

TEST(Estimators, ResultsDoNotDependOnTheThreadCount) {
  const int64_t rows = 256, cols = 192;
  const std::vector<float> x = gaussian(rows * cols, 50, 0.1f), y = gaussian(rows * cols, 51, -0.2f, 3.f);
  for (const char* name : {"mse", "mse_golden", "percentile", "cross_entropy"})
    for (const Grouping& g : {per_tensor(), per_channel(0), per_embedding_group(contiguous_channel_groups(cols, 6))}) {
      auto run = [&](int threads) {
        const int saved = omp_get_max_threads();
        omp_set_num_threads(threads);
        auto o = observer(name, g, [](ObserverOptions& opt) {
          opt.sample_budget = 4096;  // force sampling
          opt.min_group_sample = 128;
        });
        o->observe(x.data(), rows, cols);
        o->observe(y.data(), rows, cols);
        const QuantParams p = o->finalize(4, false);
        omp_set_num_threads(saved);
        return p;
      };
      const QuantParams one = run(1), four = run(4);
      EXPECT_EQ(one.scale, four.scale) << name << " " << granularity_name(g.granularity);
      EXPECT_EQ(one.zero_point, four.zero_point) << name;
    }
}

TEST(Estimators, Errors) {
  expect_error([] { observer("kl_divergence"); }, {"test.point", "kl_divergence", "minmax", "cross_entropy"});
  expect_error([] { observer("minmax", per_token()); }, {"test.point", "per_token", "run time"});
  auto o = observer("mse");
  expect_error([&] { o->finalize(8, false); }, {"test.point", "no calibration data"});
  std::vector<float> x = {1.f, 2.f, std::nanf(""), 4.f};
  expect_error([&] { o->observe(x.data(), 2, 2); }, {"test.point", "nan", "row 1, column 0"});
  x[2] = INFINITY;
  expect_error([&] { o->observe(x.data(), 2, 2); }, {"test.point", "inf"});
  expect_error([] { observer("percentile", per_tensor(), [](ObserverOptions& opt) { opt.percentile = 10; }); },
               {"percentile 10"});
  expect_error([] { observer("running_minmax", per_tensor(), [](ObserverOptions& opt) { opt.momentum = 1; }); },
               {"momentum 1"});
  auto ce = observer("cross_entropy");
  const std::vector<float> y(12, 1.f);
  ce->observe(y.data(), 3, 4);
  expect_error([&] { ce->observe(y.data(), 4, 3); }, {"test.point", "complete rows", "3 columns"});
}

}  // namespace
}  // namespace tquant
