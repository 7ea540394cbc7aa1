// Forward-pass throughput: the default model at ctx 512, and a BERT-base-shaped random model
// (12 layers, hidden 768, batch 8 × 128) against the bare sgemm calls of the same shapes, so the
// two can be compared as a ratio measured in the same run (bench/run.sh prints it). And the two
// exponential-bound steps of evaluation, the attention softmax and the perplexity's
// log-sum-exp, against the std::exp loops they replaced, as pairs in the same run.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "core/atomic_file.h"
#include "eval/perplexity.h"
#include "io/safetensors.h"
#include "kernels/ops.h"
#include "kernels/vexp.h"
#include "model/model.h"

namespace tquant {
namespace {

constexpr int kLayers = 12, kHidden = 768, kHeads = 12, kFfn = 3072, kBatch = 8, kSeq = 128, kVocab = 30522;

Tensor random_tensor(Shape shape, std::mt19937& rng, float stddev, float mean = 0.f) {
  Tensor t(std::move(shape));
  std::normal_distribution<float> dist(mean, stddev);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = dist(rng);
  return t;
}

// A BertModel folder with random weights, written once per run into the temp directory.
std::filesystem::path bert_base_dir() {
  static const std::filesystem::path dir = [] {
    const auto d = std::filesystem::temp_directory_path() / "tquant-bench-bert-base";
    if (std::filesystem::exists(d / "model.safetensors")) return d;
    std::mt19937 rng(1234);
    std::vector<TensorToWrite> ts;
    auto add = [&](const std::string& name, Shape shape, float stddev, float mean = 0.f) {
      ts.push_back(f32_tensor(name, random_tensor(std::move(shape), rng, stddev, mean)));
    };
    const int64_t D = kHidden;
    add("embeddings.word_embeddings.weight", {kVocab, D}, 0.02f);
    add("embeddings.position_embeddings.weight", {512, D}, 0.02f);
    add("embeddings.token_type_embeddings.weight", {2, D}, 0.02f);
    add("embeddings.LayerNorm.weight", {D}, 0.02f, 1.f);
    add("embeddings.LayerNorm.bias", {D}, 0.02f);
    for (int l = 0; l < kLayers; ++l) {
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      for (const char* n : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
        add(p + n + ".weight", {D, D}, 0.02f);
        add(p + n + ".bias", {D}, 0.02f);
      }
      add(p + "attention.output.LayerNorm.weight", {D}, 0.02f, 1.f);
      add(p + "attention.output.LayerNorm.bias", {D}, 0.02f);
      add(p + "intermediate.dense.weight", {kFfn, D}, 0.02f);
      add(p + "intermediate.dense.bias", {kFfn}, 0.02f);
      add(p + "output.dense.weight", {D, kFfn}, 0.02f);
      add(p + "output.dense.bias", {D}, 0.02f);
      add(p + "output.LayerNorm.weight", {D}, 0.02f, 1.f);
      add(p + "output.LayerNorm.bias", {D}, 0.02f);
    }
    write_directory_atomically(d, [&](const std::filesystem::path& tmp) {
      write_safetensors(tmp / "model.safetensors", ts);
      write_text_atomically(tmp / "config.json",
                            R"({"architectures": ["BertModel"], "vocab_size": 30522, "hidden_size": 768,
                                "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
                                "max_position_embeddings": 512, "type_vocab_size": 2, "hidden_act": "gelu",
                                "layer_norm_eps": 1e-12})");
    });
    return d;
  }();
  return dir;
}

double bert_flops() {
  const double tokens = double(kBatch) * kSeq, D = kHidden;
  const double linears = 2 * tokens * (4 * D * D + 2 * D * kFfn);
  const double attention = 2 * 2 * double(kBatch) * kHeads * kSeq * kSeq * (D / kHeads);
  return kLayers * (linears + attention);
}

void BM_BertBaseForward(benchmark::State& state) {
  const Model model = Model::load(bert_base_dir());
  Batch b;
  b.batch = kBatch;
  b.seq = kSeq;
  for (int i = 0; i < kBatch * kSeq; ++i) b.ids.push_back(1000 + (i * 7919) % 20000);
  b.lengths.assign(kBatch, kSeq);
  for (auto _ : state) benchmark::DoNotOptimize(model.forward(b).data());
  state.counters["GFLOPs"] = benchmark::Counter(bert_flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_BertBaseForward)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

// The same GEMMs as the forward pass, called back to back on preallocated buffers: the ceiling.
void BM_BertBaseGemmsOnly(benchmark::State& state) {
  const int64_t M = int64_t{kBatch} * kSeq, D = kHidden, dh = kHidden / kHeads;
  std::mt19937 rng(1);
  const Tensor x = random_tensor({M, kFfn}, rng, 1.f);
  const Tensor w = random_tensor({kFfn, D}, rng, 0.02f);
  Tensor y({M, kFfn}), s({int64_t{kBatch} * kHeads, kSeq, kSeq}), ctx({M, D});
  for (auto _ : state) {
    for (int l = 0; l < kLayers; ++l) {
      for (int p = 0; p < 4; ++p)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, D, D, 1.f, x.data(), D, w.data(), D, 0.f, y.data(), D);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, kFfn, D, 1.f, x.data(), D, w.data(), D, 0.f, y.data(), kFfn);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, D, kFfn, 1.f, x.data(), kFfn, w.data(), kFfn, 0.f, y.data(), D);
#pragma omp parallel for schedule(static)
      for (int bh = 0; bh < kBatch * kHeads; ++bh) {
        const int b = bh / kHeads, h = bh % kHeads;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, kSeq, kSeq, dh, 1.f, x.data() + b * kSeq * D + h * dh, D,
                    x.data() + b * kSeq * D + h * dh, D, 0.f, s.data() + bh * kSeq * kSeq, kSeq);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, kSeq, dh, kSeq, 1.f, s.data() + bh * kSeq * kSeq, kSeq,
                    x.data() + b * kSeq * D + h * dh, D, 0.f, ctx.data() + b * kSeq * D + h * dh, D);
      }
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::DoNotOptimize(ctx.data());
  }
  state.counters["GFLOPs"] = benchmark::Counter(bert_flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_BertBaseGemmsOnly)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

// Perplexity evaluation of the default model at ctx 512 (forward + log-softmax of every scored
// token), on 8 windows of token ids taken from the model's own range.
void BM_DefaultModelEvalCtx512(benchmark::State& state) {
  const Model model = Model::load(std::filesystem::path(TQUANT_SHARED_DIR) / "models" / "tinystories-656k");
  std::vector<int32_t> tokens;
  for (int i = 0; i < 8 * 512; ++i) tokens.push_back(3 + (i * 7919) % 2045);
  PerplexityOptions o;
  o.ctx = o.stride = 512;
  int64_t scored = 0;
  for (auto _ : state) scored += evaluate_perplexity(model, tokens, o).tokens_scored;
  state.counters["tokens_per_second"] = benchmark::Counter(double(scored), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DefaultModelEvalCtx512)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

// The attention softmax of one head at ctx 512: 512 causal rows (row i sees i + 1 keys) of
// length 512, scaled by 1/sqrt(16) as in the default model, through softmax_prefix (kernels/vexp.h)
// and through the std::exp loop it replaced (kept here, and only here, as the baseline). Each
// row is first copied from the unscaled scores, in both, since the softmax works in place.
void softmax_prefix_std_exp(float* x, int64_t d, int64_t visible, float scale) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < visible; ++j) {
    x[j] *= scale;
    mx = std::max(mx, x[j]);
  }
  double sum = 0;
  for (int64_t j = 0; j < visible; ++j) {
    x[j] = std::exp(x[j] - mx);
    sum += x[j];
  }
  const float inv = visible > 0 ? static_cast<float>(1.0 / sum) : 0.f;
  for (int64_t j = 0; j < visible; ++j) x[j] *= inv;
  for (int64_t j = visible; j < d; ++j) x[j] = 0.f;
}

constexpr int64_t kCtx = 512;

template <void (*Softmax)(float*, int64_t, int64_t, float)>
void BM_SoftmaxCausal512(benchmark::State& state) {
  std::mt19937 rng(3);
  const Tensor scores = random_tensor({kCtx, kCtx}, rng, 8.f);
  Tensor probs({kCtx, kCtx});
  for (auto _ : state) {
    for (int64_t i = 0; i < kCtx; ++i) {
      float* row = probs.data() + i * kCtx;
      std::copy_n(scores.data() + i * kCtx, i + 1, row);
      Softmax(row, kCtx, i + 1, 0.25f);
    }
    benchmark::DoNotOptimize(probs.data());
  }
  state.counters["exps_per_second"] =
      benchmark::Counter(double(kCtx) * (kCtx + 1) / 2, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_SoftmaxCausal512<softmax_prefix_std_exp>)
    ->Name("BM_SoftmaxCausal512/std_exp")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SoftmaxCausal512<softmax_prefix>)->Name("BM_SoftmaxCausal512/vexp")->Unit(benchmark::kMicrosecond);

// The perplexity's log-sum-exp over the default model's 2048-entry vocabulary for 512 scored
// tokens: the double std::exp loop it replaced against log_sum_exp.
double log_sum_exp_std_exp(const float* l, int64_t n) {
  float mx = l[0];
  for (int64_t v = 1; v < n; ++v) mx = std::max(mx, l[v]);
  double sum = 0;
  for (int64_t v = 0; v < n; ++v) sum += std::exp(static_cast<double>(l[v]) - mx);
  return std::log(sum) + mx;
}

template <double (*Lse)(const float*, int64_t)>
void BM_LogSumExpVocab2048(benchmark::State& state) {
  constexpr int64_t kVocabTiny = 2048;
  std::mt19937 rng(4);
  const Tensor logits = random_tensor({kCtx, kVocabTiny}, rng, 3.f);
  for (auto _ : state) {
    double total = 0;
    for (int64_t t = 0; t < kCtx; ++t) total += Lse(logits.data() + t * kVocabTiny, kVocabTiny);
    benchmark::DoNotOptimize(total);
  }
  state.counters["exps_per_second"] =
      benchmark::Counter(double(kCtx) * kVocabTiny, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_LogSumExpVocab2048<log_sum_exp_std_exp>)
    ->Name("BM_LogSumExpVocab2048/std_exp")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_LogSumExpVocab2048<log_sum_exp>)->Name("BM_LogSumExpVocab2048/vexp")->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace tquant

BENCHMARK_MAIN();
