// GPTQ and grid-search cost on an LLM-sized layer (n = 4096: W [n, n], H from 2n random tokens),
// against a plain n³ sgemm measured in the same run, so that the solver's GFLOP/s can be read as a
// fraction of what the BLAS reaches on this machine. n = 512 runs too, as a quick smoke size.
//
// FLOPs counted for GPTQ: the factorisation it performs (Cholesky n³/3 and triangular inverse
// n³/3, see gptq.cc) and the error feedback rows·cols² (each column's error times the rest of
// U's row). "ref_GFLOP/s" counts the reference's three-step factorisation instead
// (Cholesky, inverse, Cholesky of the inverse: 4n³/3), i.e. the rate at which the same problem
// would have to be solved the reference's way to take the same time. The factorisation is
// blocked so that it is bit-identical for any thread count (cholesky.h); BM_Factor compares it
// with OpenBLAS's threaded LAPACK.
//
// These are slow; each runs a fixed couple of iterations.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <lapacke.h>
#include <omp.h>

#include <map>
#include <random>
#include <vector>

#include "wquant/cholesky.h"
#include "wquant/gptq.h"
#include "wquant/grid_search.h"
#include "wquant/hessian.h"

namespace tquant::wq {
namespace {

struct Layer {
  Tensor W, H;
};

// W ~ N(0, 0.02²) and H = 2 XᵀX / N + 1% damping for X [2n, n] with correlated columns, seeded.
const Layer& layer(int64_t n) {
  static std::map<int64_t, Layer> cache;
  auto it = cache.find(n);
  if (it != cache.end()) return it->second;
  std::mt19937 rng(1234);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t N = 2 * n;
  std::vector<float> X(static_cast<size_t>(N * n));
  for (int64_t t = 0; t < N; ++t) {
    const float common = nd(rng);
    for (int64_t c = 0; c < n; ++c) X[t * n + c] = 0.5f * common + nd(rng);
  }
  Layer l{Tensor({n, n}), Tensor({n, n})};
  for (int64_t i = 0; i < n * n; ++i) l.W[i] = 0.02f * nd(rng);
  accumulate_xtx(l.H, X.data(), N, n, 2.f / static_cast<float>(N));
  prepare_hessian(l.H, l.W);
  return cache.emplace(n, std::move(l)).first->second;
}

WeightFormat format(int64_t group) {
  WeightFormat f;
  f.bits = 4;
  f.group = group;
  return f;
}

void gflops_counter(benchmark::State& state, double flops) {
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Args: n, act_order.
void BM_Gptq(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Layer& l = layer(n);
  const WeightGrid grid = minmax_grid(l.W, format(0));
  GptqOptions o;
  o.act_order = state.range(1) != 0;
  for (auto _ : state) benchmark::DoNotOptimize(gptq(l.W, l.H, grid, o).codes.data());
  const double d = static_cast<double>(n);
  gflops_counter(state, (1.0 / 3 + 1.0 / 3) * d * d * d + d * d * d);
  state.counters["ref_GFLOP/s"] = benchmark::Counter((4.0 / 3 + 1.0) * d * d * d * 1e-9,
                                                     benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(o.act_order ? "4-bit act_order" : "4-bit");
}
BENCHMARK(BM_Gptq)->Args({512, 1})->Args({4096, 0})->Args({4096, 1})->Iterations(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// The factorisation inside GPTQ: Cholesky and triangular inverse of the (reversed) H. Arg 0:
// tquant's blocked, thread-count-independent version (cholesky.h), as gptq runs it; 1: OpenBLAS's
// own threaded spotrf + strtri, whose bits depend on the thread count — the price of determinism.
void BM_Factor(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Layer& l = layer(n);
  Tensor a({n, n}), x({n, n});
  for (auto _ : state) {
    std::copy(l.H.data(), l.H.data() + n * n, a.data());
    if (state.range(1) == 0) {
      if (cholesky_lower(a.data(), n) != 0) state.SkipWithError("factorisation failed");
      invert_lower(a.data(), n, x.data());
    } else {
      int info = LAPACKE_spotrf(LAPACK_COL_MAJOR, 'U', n, a.data(), n);
      info |= LAPACKE_strtri(LAPACK_COL_MAJOR, 'U', 'N', n, a.data(), n);
      if (info) state.SkipWithError("factorisation failed");
    }
  }
  const double d = static_cast<double>(n);
  gflops_counter(state, (1.0 / 3 + 1.0 / 3) * d * d * d);
  state.SetLabel(state.range(1) ? "OpenBLAS threaded" : "tquant blocked");
}
BENCHMARK(BM_Factor)->Args({4096, 0})->Args({4096, 1})->Iterations(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// The reference point: one n³ sgemm with OpenBLAS's own threading.
void BM_Sgemm(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Layer& l = layer(n);
  Tensor c({n, n});
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, l.W.data(), n, l.H.data(), n, 0.f, c.data(), n);
    benchmark::ClobberMemory();
  }
  const double d = static_cast<double>(n);
  gflops_counter(state, 2 * d * d * d);
}
BENCHMARK(BM_Sgemm)->Arg(512)->Arg(4096)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();

// Args: n, group (0: per row, scored with diag H at n > 1024; 128: exact block score).
void BM_SearchGrid(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Layer& l = layer(n);
  const WeightFormat f = format(state.range(1));
  for (auto _ : state) benchmark::DoNotOptimize(search_grid(l.W, l.H, f).scale.data());
  const bool exact = (f.group ? f.group : n) <= GridSearchOptions{}.full_h_max_width;
  state.SetLabel(exact ? "exact block score" : "diag(H) score");
  if (exact) {  // 200 candidates, each ΔW·H_block: 2·n·n·width
    const double width = static_cast<double>(f.group ? f.group : n);
    gflops_counter(state, 200.0 * 2 * static_cast<double>(n) * static_cast<double>(n) * width);
  }
}
BENCHMARK(BM_SearchGrid)
    ->Args({512, 0})
    ->Args({4096, 0})
    ->Args({4096, 128})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace tquant::wq

BENCHMARK_MAIN();
