// Training throughput: one optimizer step (forward, loss, backward, clipping, AdamW) of the
// reference encoder's shape (BERT-mini: 4 layers, hidden 256, FFN 1024, vocabulary 8192) on
// 32 x 128 masked-LM tokens, and of a LLaMA of the default model's shape on 8 x 256 causal-LM
// tokens; against an sgemm of the step's dominant shape in the same run, so that the step's
// GEMM work (counted below) can be read as a fraction of what the BLAS reaches here.
//
// GEMM FLOPs counted per step, N = B·T tokens: every linear layer 2·N·in·out forward and twice
// that backward (dX and dW); attention 2·B·H·T²·dh for each of QKᵀ and PV forward and twice that
// backward; the masked-LM head only on its target rows. Elementwise work is not counted.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>

#include "core/counter_rng.h"
#include "core/temp_dir.h"
#include "kernels/gemm.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/model_init.h"
#include "train/optimizer.h"
#include "train/trainable.h"
#include "train/lm_batches.h"

namespace tquant::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

struct Setup {
  std::unique_ptr<TempDir> dir;
  Model model;
  Batch batch;
  std::vector<int32_t> labels;
  double gemm_flops = 0;
};

Setup make(const json& config, int B, int T, bool masked) {
  Setup s;
  const std::string arch = config["architectures"][0].get<std::string>();
  s.dir = std::make_unique<TempDir>(TempDir::path_beside(fs::temp_directory_path() / ("tquant-train-bench-" + arch)));
  {
    std::ofstream f(s.dir->path() / "config.json");
    f << config.dump();
  }
  const ModelConfig c = parse_config(s.dir->path() / "config.json");
  write_training_folder(s.dir->path(), config, initial_tensors(c, 0.02f, 1), "", json::object(), nullptr, nullptr);
  s.model = Model::load(s.dir->path());
  s.batch.batch = B;
  s.batch.seq = T;
  s.batch.lengths.assign(B, T);
  int64_t targets = 0;
  for (int i = 0; i < B * T; ++i) {
    s.batch.ids.push_back(5 + static_cast<int32_t>(counter_bits(1, i) % (c.vocab_size - 5)));
    const bool target = !masked || counter_uniform(2, i) < 0.15f;
    s.labels.push_back(target ? static_cast<int32_t>(counter_bits(3, i) % c.vocab_size) : kIgnoreLabel);
    targets += target;
  }
  const double N = double{B} * T, D = c.hidden, F = c.intermediate, V = c.vocab_size;
  const double qkv = D * (double{c.heads} + 2.0 * c.kv_heads) * c.head_dim, o = double{c.heads} * c.head_dim * D;
  const double ffn = (c.gated_ffn ? 3.0 : 2.0) * D * F;
  const double per_layer = 6.0 * N * (qkv + o + ffn) + 3.0 * 4.0 * B * c.heads * double{T} * T * c.head_dim;
  const double head = masked ? 6.0 * targets * (D * D + D * V) : 6.0 * N * D * V;
  s.gemm_flops = c.layers * per_layer + head;
  return s;
}

void run_steps(benchmark::State& state, Setup& s) {
  TrainableModel tm(s.model);
  AdamW adam(tm.parameters(), {});
  Targets t;
  t.tokens = &s.labels;
  int64_t step = 0;
  for (auto _ : state) {
    tm.zero_grad();
    tm.accumulate(s.batch, t, 1e-3f, {0.1f, 0.1f}, step++);
    clip_grad_norm(tm.parameters(), 1.0);
    adam.step(1e-4f);
  }
  const double tokens = double{s.batch.batch} * s.batch.seq;
  state.counters["tokens_per_s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["gemm_GFLOP_per_s"] =
      benchmark::Counter(s.gemm_flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_TrainStepBertMini(benchmark::State& state) {
  static Setup s = make({{"architectures", {"BertForMaskedLM"}}, {"vocab_size", 8192}, {"hidden_size", 256},
                         {"num_hidden_layers", 4}, {"num_attention_heads", 4}, {"intermediate_size", 1024},
                         {"hidden_act", "gelu"}, {"max_position_embeddings", 512}, {"type_vocab_size", 2},
                         {"layer_norm_eps", 1e-12}, {"pad_token_id", 0}},
                        32, 128, true);
  run_steps(state, s);
}
BENCHMARK(BM_TrainStepBertMini)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

void BM_TrainStepLlamaTiny(benchmark::State& state) {
  static Setup s = make({{"architectures", {"LlamaForCausalLM"}}, {"vocab_size", 2048}, {"hidden_size", 128},
                         {"num_hidden_layers", 2}, {"num_attention_heads", 8}, {"num_key_value_heads", 4},
                         {"intermediate_size", 384}, {"hidden_act", "silu"}, {"max_position_embeddings", 1024},
                         {"rms_norm_eps", 1e-6}, {"tie_word_embeddings", true}},
                        8, 256, false);
  run_steps(state, s);
}
BENCHMARK(BM_TrainStepLlamaTiny)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

// The reference: BERT-mini's FFN up-projection forward ([4096, 256] x [256, 1024]) through the
// same deterministic tiled sgemm the engine uses.
void BM_SgemmFfnShape(benchmark::State& state) {
  const int64_t M = 4096, K = 256, N = 1024;
  std::vector<float> a(M * K, 0.5f), b(N * K, 0.25f), c(M * N);
  for (auto _ : state) {
    gemm(false, true, M, N, K, 1.f, a.data(), K, b.data(), K, 0.f, c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["gemm_GFLOP_per_s"] =
      benchmark::Counter(2.0 * M * N * K * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_SgemmFfnShape)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);

}  // namespace
}  // namespace tquant::train

BENCHMARK_MAIN();
