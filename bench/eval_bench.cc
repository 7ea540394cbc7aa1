// End-to-end perplexity-evaluation throughput, F32 against the quantized models tquant runs, in
// one run: the default model on real TinyStories text, and a LLaMA-shaped random model large
// enough (hidden 1024, 4 layers, FFN 2816) that the linear layers dominate, as they do in real
// LLMs. bench/run.sh prints each variant's tokens/s over F32's for the same model and threads.
//
// Variants (the paths `tquant eval` takes for the same inputs):
//   f32          the FP model
//   q4_0         exported to GGUF q4_0 (RTN, as llama-quantize --pure) and held packed: linears,
//                token embedding and tied head multiplied block by block, float activations
//   q4_0_q8act   the same GGUF with int8 activation blocks (tquant eval --q8-activations)
//   w8a8_fake    recipe w8a8, fake quantization (float GEMMs on fake-quantized values)
//   w8a8_int8    recipe w8a8 with --real-int8 (int8 × int8 → int32 GEMM)
// The W8A8 calibration is 16 windows of 512 tokens of TinyStories calib.txt. Arguments: threads.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <map>
#include <memory>
#include <random>

#include "core/atomic_file.h"
#include "core/text_file.h"
#include "core/threads.h"
#include "eval/perplexity.h"
#include "export/gguf_export.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/point_names.h"
#include "quant/calibration.h"
#include "quant/real_int8.h"
#include "quant/recipe.h"
#include "tokenize/tokenizer.h"

namespace tquant {
namespace {

namespace fs = std::filesystem;

const fs::path kShared = fs::path(TQUANT_SHARED_DIR);
const fs::path kDefaultModel = kShared / "models" / "tinystories-656k";

std::vector<int32_t> tokens_of(const fs::path& text_file, size_t max_tokens) {
  auto ids = Tokenizer::from_dir(kDefaultModel)->encode(read_text_file(text_file, "text file"), false).ids;
  if (ids.size() > max_tokens) ids.resize(max_tokens);
  return ids;
}

// LlamaForCausalLM with random N(0, 0.02) weights and the default model's tokenizer (vocab
// 2048, tied embeddings), written once per run into the temp directory.
constexpr int kLayers = 4, kHidden = 1024, kHeads = 16, kFfn = 2816, kVocab = 2048;

fs::path large_llama_dir() {
  static const fs::path dir = [] {
    const fs::path d = fs::temp_directory_path() / "tquant-bench-llama-1024";
    if (fs::exists(d / "model.safetensors")) return d;
    std::mt19937 rng(4321);
    std::normal_distribution<float> normal(0.f, 0.02f);
    std::vector<TensorToWrite> ts;
    auto add = [&](const std::string& name, Shape shape, bool ones = false) {
      Tensor t(std::move(shape));
      for (int64_t i = 0; i < t.numel(); ++i) t[i] = ones ? 1.f : normal(rng);
      ts.push_back(f32_tensor(name, t));
    };
    add("model.embed_tokens.weight", {kVocab, kHidden});
    add("model.norm.weight", {kHidden}, true);
    for (int l = 0; l < kLayers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      for (const char* n : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"})
        add(p + n + ".weight", {kHidden, kHidden});
      add(p + "mlp.gate_proj.weight", {kFfn, kHidden});
      add(p + "mlp.up_proj.weight", {kFfn, kHidden});
      add(p + "mlp.down_proj.weight", {kHidden, kFfn});
      add(p + "input_layernorm.weight", {kHidden}, true);
      add(p + "post_attention_layernorm.weight", {kHidden}, true);
    }
    write_directory_atomically(d, [&](const fs::path& tmp) {
      write_safetensors(tmp / "model.safetensors", ts);
      fs::copy_file(kDefaultModel / "tokenizer.json", tmp / "tokenizer.json");
      write_text_atomically(tmp / "config.json",
                            R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 2048,
                                "hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 4,
                                "num_attention_heads": 16, "num_key_value_heads": 16, "hidden_act": "silu",
                                "max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
                                "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2})");
    });
    return d;
  }();
  return dir;
}

struct Variant {
  Model model;
  std::unique_ptr<Hooks> hooks;  // W8A8 only
};

Variant make_variant(const fs::path& dir, const std::string& kind) {
  Variant v;
  if (kind == "f32") {
    v.model = Model::load(dir);
  } else if (kind == "q4_0" || kind == "q4_0_q8act") {
    const fs::path gguf = fs::temp_directory_path() / ("tquant-bench-" + dir.filename().string() + "-q4_0.gguf");
    if (!fs::exists(gguf)) gguf::export_gguf(dir, gguf::TensorType::Q4_0, gguf);
    v.model = Model::load(gguf, /*keep_packed=*/true);
    if (kind == "q4_0_q8act") v.model.enable_q8_activations();
  } else {  // w8a8_fake, w8a8_int8
    v.model = Model::load(dir);
    const Recipe recipe = load_recipe("w8a8", documented_recipe_names(v.model.config().layers));
    std::map<std::string, QuantParams> weight_params;
    const auto weights = quantize_weights(v.model, recipe, {}, &weight_params);
    const auto calib = calibration_windows(tokens_of(kShared / "data" / "tinystories" / "calib.txt", 1 << 20), 16,
                                           512, 0, -1, 4);
    Calibration c = calibrate_activations(v.model, recipe, calib);
    c.recipe = recipe.name;
    c.weights = weights;
    v.hooks = std::make_unique<Hooks>();
    if (kind == "w8a8_int8")
      v.hooks->add(enable_real_int8(v.model, c, weight_params).hook);
    else
      v.hooks->add(std::make_shared<FakeQuantHook>(c));
  }
  return v;
}

// Built on first use and kept for the run, so that repetitions time evaluation only.
const Variant& variant(const fs::path& dir, const std::string& kind) {
  static std::map<std::string, std::unique_ptr<Variant>> cache;
  auto& slot = cache[dir.string() + "/" + kind];
  if (!slot) slot = std::make_unique<Variant>(make_variant(dir, kind));
  return *slot;
}

void eval_throughput(benchmark::State& state, const fs::path& dir, const std::string& kind, size_t tokens) {
  static const std::vector<int32_t> text = tokens_of(kShared / "data" / "tinystories" / "eval.txt", 8 * 512);
  const std::vector<int32_t> ids(text.begin(), text.begin() + std::min(tokens, text.size()));
  set_num_threads(static_cast<int>(state.range(0)));
  const Variant& v = variant(dir, kind);
  PerplexityOptions o;
  o.ctx = o.stride = 512;
  int64_t scored = 0;
  double ppl = 0;
  for (auto _ : state) {
    const PerplexityResult r = evaluate_perplexity(v.model, ids, o, v.hooks.get());
    scored += r.tokens_scored;
    ppl = r.ppl;
  }
  state.counters["tokens_per_second"] = benchmark::Counter(double(scored), benchmark::Counter::kIsRate);
  state.counters["ppl"] = ppl;
  set_num_threads(0);
}

void register_all() {
  for (const char* kind : {"f32", "q4_0", "q4_0_q8act", "w8a8_fake", "w8a8_int8"}) {
    benchmark::RegisterBenchmark((std::string("BM_EvalDefaultModel/") + kind).c_str(),
                                 [kind](benchmark::State& s) { eval_throughput(s, kDefaultModel, kind, 8 * 512); })
        ->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
    benchmark::RegisterBenchmark((std::string("BM_EvalLlama1024/") + kind).c_str(),
                                 [kind](benchmark::State& s) { eval_throughput(s, large_llama_dir(), kind, 2 * 512); })
        ->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
  }
}

}  // namespace
}  // namespace tquant

int main(int argc, char** argv) {
  tquant::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
