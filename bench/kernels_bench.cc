// Packed low-bit and int8 kernels against OpenBLAS on the same shapes, same run (issue 7):
//   4-bit GEMV (ggml Q4_0 and tquant 4-bit g32) vs cblas_sgemv at 4096 x 4096, with float32
//   activations (exact) and with int8 activations (llama.cpp-style, quantized inside the timed
//   loop);
//   int8 GEMM (per-tensor and PEG K = 6 activation scales) vs cblas_sgemm at 512 tokens x 4096 x 4096;
//   the 4-bit GEMMs (Q4_0 and tquant 4-bit g32) with int8 activations, quantized inside the timed
//   loop, vs cblas_sgemm on that shape (and the Q4_0 GEMM with fp32 activations, for reference).
// The argument is the thread count (1 and 2); bench/run.sh kernels prints the ratios.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>

#include <random>

#include "io/half.h"
#include "kernels/cpu_features.h"
#include "kernels/int8_gemm.h"
#include "kernels/qgemv.h"
#include "kernels/qgemv_q8act.h"

namespace tquant {
namespace {

constexpr int64_t kN = 4096, kK = 4096, kTokens = 512;

void set_threads(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  state.SetLabel(simd_level_name(simd_level()));
}

std::vector<float> random_floats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = nd(rng);
  return v;
}

const std::vector<float>& fp_weight() {
  static const std::vector<float> w = random_floats(kN * kK, 1);
  return w;
}

const PackedMatrix& q4_0_weight() {
  static const PackedMatrix m = [] {
    std::mt19937 rng(2);
    std::vector<uint8_t> blocks(static_cast<size_t>(kN * kK / 32 * 18));
    for (size_t b = 0; b < blocks.size(); b += 18) {
      const uint16_t d = f32_to_f16(0.01f + 0.001f * static_cast<float>(rng() % 16));
      blocks[b] = static_cast<uint8_t>(d & 0xff);
      blocks[b + 1] = static_cast<uint8_t>(d >> 8);
      for (int j = 2; j < 18; ++j) blocks[b + j] = static_cast<uint8_t>(rng());
    }
    return PackedMatrix::from_ggml(QFormat::Q4_0, kN, kK, blocks, "bench");
  }();
  return m;
}

const PackedMatrix& packed4_weight() {
  static const PackedMatrix m = [] {
    std::mt19937 rng(3);
    std::vector<uint8_t> codes(static_cast<size_t>(kN * kK));
    for (auto& c : codes) c = static_cast<uint8_t>(rng() % 16);
    std::vector<float> scale(kN * kK / 32, 0.01f), zero(kN * kK / 32, 8.f);
    return PackedMatrix::from_codes(4, 32, kN, kK, codes, scale, zero, "bench");
  }();
  return m;
}

void BM_GemvF32(benchmark::State& state) {
  set_threads(state);
  const auto& w = fp_weight();
  const auto x = random_floats(kK, 4);
  std::vector<float> y(kN);
  for (auto _ : state) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, kN, kK, 1.f, w.data(), kK, x.data(), 1, 0.f, y.data(), 1);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["weight_GB/s"] = benchmark::Counter(4.0 * kN * kK / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void gemv_packed(benchmark::State& state, const PackedMatrix& w) {
  set_threads(state);
  const auto x = random_floats(kK, 4);
  std::vector<float> y(kN);
  for (auto _ : state) {
    packed_matmul(w, x.data(), 1, nullptr, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["weight_GB/s"] =
      benchmark::Counter(static_cast<double>(w.storage_bytes()) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
void BM_GemvQ4_0(benchmark::State& state) { gemv_packed(state, q4_0_weight()); }
void BM_GemvPacked4(benchmark::State& state) { gemv_packed(state, packed4_weight()); }

// The activation vector is quantized to int8 blocks inside the loop, as every call in a forward
// pass must.
void gemv_q8act(benchmark::State& state, const PackedMatrix& w) {
  set_threads(state);
  const auto x = random_floats(kK, 4);
  std::vector<float> y(kN);
  for (auto _ : state) {
    packed_matmul_q8act(w, x.data(), 1, nullptr, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["weight_GB/s"] =
      benchmark::Counter(static_cast<double>(w.storage_bytes()) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
void BM_GemvQ4_0Q8(benchmark::State& state) { gemv_q8act(state, q4_0_weight()); }
void BM_GemvPacked4Q8(benchmark::State& state) { gemv_q8act(state, packed4_weight()); }

constexpr double kGemmFlops = 2.0 * kTokens * kN * kK;

void BM_GemmF32(benchmark::State& state) {
  set_threads(state);
  const auto& w = fp_weight();
  const auto x = random_floats(kTokens * kK, 5);
  std::vector<float> y(kTokens * kN);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, kTokens, kN, kK, 1.f, x.data(), kK, w.data(), kK, 0.f,
                y.data(), kN);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(kGemmFlops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void gemm_int8(benchmark::State& state, int groups) {
  set_threads(state);
  std::mt19937 rng(6);
  std::vector<int8_t> codes(static_cast<size_t>(kN * kK));
  for (auto& c : codes) c = static_cast<int8_t>(rng());
  std::vector<int32_t> channel_group;
  if (groups > 1) {
    for (int64_t c = 0; c < kK; ++c) channel_group.push_back(static_cast<int32_t>(c % groups));
    std::shuffle(channel_group.begin(), channel_group.end(), rng);
  }
  const Int8Weight w = make_int8_weight(codes, kN, kK, std::vector<float>(kN, 0.01f), channel_group, "bench");
  Int8Activations a;
  a.m = kTokens;
  a.kp = w.kp;
  a.codes.resize(static_cast<size_t>(kTokens * w.kp));
  for (auto& c : a.codes) c = static_cast<uint8_t>(rng());
  a.scale.assign(groups, 0.02f);
  a.offset.assign(groups, 128);
  std::vector<float> y(kTokens * kN);
  for (auto _ : state) {
    int8_gemm(a, w, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GOP/s"] = benchmark::Counter(kGemmFlops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
void BM_GemmInt8(benchmark::State& state) { gemm_int8(state, 1); }
void BM_GemmInt8Peg6(benchmark::State& state) { gemm_int8(state, 6); }

void BM_GemmQ4_0(benchmark::State& state) {
  set_threads(state);
  const auto x = random_floats(kTokens * kK, 5);
  std::vector<float> y(kTokens * kN);
  for (auto _ : state) {
    packed_matmul(q4_0_weight(), x.data(), kTokens, nullptr, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(kGemmFlops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// Many tokens with int8 activations (perplexity evaluation multiplies 512 at once): the
// activations are quantized inside the loop, as every call in a forward pass must.
void gemm_q8act(benchmark::State& state, const PackedMatrix& w) {
  set_threads(state);
  const auto x = random_floats(kTokens * kK, 5);
  std::vector<float> y(kTokens * kN);
  for (auto _ : state) {
    packed_matmul_q8act(w, x.data(), kTokens, nullptr, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(kGemmFlops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
void BM_GemmQ4_0Q8(benchmark::State& state) { gemm_q8act(state, q4_0_weight()); }
void BM_GemmPacked4Q8(benchmark::State& state) { gemm_q8act(state, packed4_weight()); }

BENCHMARK(BM_GemvF32)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_GemvQ4_0)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_GemvPacked4)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_GemvQ4_0Q8)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_GemvPacked4Q8)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_GemmF32)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_GemmInt8)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_GemmInt8Peg6)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_GemmQ4_0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_GemmQ4_0Q8)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_GemmPacked4Q8)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace
}  // namespace tquant

BENCHMARK_MAIN();
