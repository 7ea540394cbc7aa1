// Forward-pass throughput: the default model at ctx 512, and a BERT-base-shaped random model
// (12 layers, hidden 768, batch 8 × 128) against the bare sgemm calls of the same shapes, so the
// two can be compared as a ratio measured in the same run (bench/run.sh prints it).
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <filesystem>
#include <random>

#include "core/atomic_file.h"
#include "eval/perplexity.h"
#include "io/safetensors.h"
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

}  // namespace
}  // namespace tquant

BENCHMARK_MAIN();
