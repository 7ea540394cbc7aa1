// Quantizer library costs on a BERT-base-shaped activation (4096 tokens x 768 channels, e.g. one
// batch of 32 x 128): the calibration time of every range estimator (one batch observed, then
// finalised at 8 bits asymmetric) per tensor and with PEG K = 6, and fake-quantization throughput
// against a plain copy of the same bytes — the floor any in-place elementwise pass is bound by.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "quant/channel_groups.h"
#include "quant/fake_quant.h"
#include "quant/range_estimator.h"

namespace tquant {
namespace {

constexpr int64_t kTokens = 4096, kChannels = 768;

// Gaussian activations with two outlier channels (like BERT's dims 308 and 381), so clipping
// estimators have something to decide.
const std::vector<float>& activation() {
  static const std::vector<float> x = [] {
    std::mt19937 rng(1234);
    std::normal_distribution<float> g(0.f, 1.f);
    std::vector<float> v(kTokens * kChannels);
    for (int64_t t = 0; t < kTokens; ++t)
      for (int64_t c = 0; c < kChannels; ++c)
        v[t * kChannels + c] = g(rng) * (c == 308 || c == 381 ? 30.f : 1.f);
    return v;
  }();
  return x;
}

Grouping grouping_of(int64_t peg_groups) {
  return peg_groups == 0 ? per_tensor()
                         : per_embedding_group(contiguous_channel_groups(kChannels, peg_groups));
}

// Args: estimator index (RangeEstimator order), PEG groups (0 = per tensor).
void BM_Calibrate(benchmark::State& state) {
  const auto estimator = static_cast<RangeEstimator>(state.range(0));
  ObserverOptions o;
  o.point = "bench";
  o.grouping = grouping_of(state.range(1));
  const std::vector<float>& x = activation();
  for (auto _ : state) {
    auto obs = make_range_observer(estimator, o);
    obs->observe(x.data(), kTokens, kChannels);
    benchmark::DoNotOptimize(obs->finalize(8, false));
  }
  state.SetLabel(std::string(range_estimator_name(estimator)) +
                 (state.range(1) ? " peg" + std::to_string(state.range(1)) : " per_tensor"));
  state.counters["Mvalues_per_s"] =
      benchmark::Counter(double(kTokens * kChannels) * 1e-6, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Calibrate)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6}, {0, 6}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Arg: 0 per tensor, 6 PEG K = 6, -1 per token (dynamic: ranges taken inside the call).
void BM_FakeQuantize(benchmark::State& state) {
  QuantParams p;
  if (state.range(0) < 0) {
    p.bits = 8;
    p.grouping = per_token();
  } else {
    ObserverOptions o;
    o.grouping = grouping_of(state.range(0));
    auto obs = make_range_observer(RangeEstimator::MinMax, o);
    obs->observe(activation().data(), kTokens, kChannels);
    p = obs->finalize(8, false);
  }
  std::vector<float> x = activation();
  // In place and repeatedly: fake quantization is idempotent, so every pass does the same work.
  for (auto _ : state) {
    fake_quantize(x.data(), kTokens, kChannels, p, "bench");
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * kTokens * kChannels * 4);
  state.SetLabel(state.range(0) < 0 ? "per_token" : state.range(0) ? "peg6" : "per_tensor");
}
BENCHMARK(BM_FakeQuantize)->Arg(0)->Arg(6)->Arg(-1)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_CopyBaseline(benchmark::State& state) {
  const std::vector<float>& src = activation();
  std::vector<float> dst(src.size());
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), src.size() * sizeof(float));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * kTokens * kChannels * 4);
}
BENCHMARK(BM_CopyBaseline)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace tquant

BENCHMARK_MAIN();
