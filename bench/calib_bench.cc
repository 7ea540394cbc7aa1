// Activation-quantization costs on the default model (tinystories-656k), on TinyStories
// calibration text tokenized with the model's own tokenizer:
//
//  * BM_Calibrate/<estimator>: calibrate_activations() on the same 16 windows × 512 tokens
//    (4 forward batches of 4 × 512, as `tquant eval` groups them) for the w8a8 preset with its
//    activation estimator replaced by each range estimator; "cross_entropy_logits" keeps
//    running_minmax everywhere but the logits (the one point cross-entropy is meant for), and
//    "w8a8-peg" is the PEG preset (K = 6, permuted: pass 1 ranges on ≤ 10 batches, then pass 2).
//    BM_CalibForwardOnly runs the same batches with no hooks: the floor every calibration pays.
//    Each is one calibration per run, 3 runs (see kCalibRepetitions).
//  * BM_Forward/<variant>: one forward pass of one 4 × 512 batch with no hooks (fp) and with a
//    FakeQuantHook holding a calibration of w8a8, w8a8-peg, w6a6 and a per-token variant of w8a8
//    (every [B, T, C] point quantized per token; scores and probabilities stay per tensor, as
//    they must). The fake-quant / fp ratio is taken from one run by bench/summarize.py.
//
// Recipes are built through the library (load_recipe of the preset, edited as JSON, then
// parse_recipe), so nothing here re-implements recipe parsing.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/point_names.h"
#include "quant/calibration.h"
#include "quant/recipe.h"
#include "tokenize/tokenizer.h"

namespace tquant {
namespace {

constexpr int kCalibWindows = 16, kCalibLen = 512, kPerBatch = 4;  // 2048 tokens per forward
constexpr uint64_t kSeed = 0;
// One calibration is one timed run of seconds (mse and percentile are the slow ones, over 10x the
// forward passes); 3 runs each, whatever --benchmark_repetitions says, keep the program short.
constexpr int kCalibRepetitions = 3;

const std::filesystem::path& model_dir() {
  static const std::filesystem::path d = std::filesystem::path(TQUANT_SHARED_DIR) / "models" / "tinystories-656k";
  return d;
}

std::vector<std::string> known_names(const Model& m) {
  auto known = documented_point_names(m.config().layers);
  const auto linears = documented_linear_names(m.config().layers);
  known.insert(known.end(), linears.begin(), linears.end());
  return known;
}

// The calibration batches: seeded windows of calib.txt, exactly as `tquant eval --calib` draws them.
const std::vector<Batch>& calib_batches() {
  static const std::vector<Batch> batches = [] {
    const auto file = std::filesystem::path(TQUANT_SHARED_DIR) / "data" / "tinystories" / "calib.txt";
    std::ifstream in(file, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    const auto tokenizer = Tokenizer::from_dir(model_dir());
    const std::vector<int32_t> tokens = tokenizer->encode(s.str(), false).ids;
    return calibration_windows(tokens, kCalibWindows, kCalibLen, kSeed, -1, kPerBatch);
  }();
  return batches;
}

int64_t tokens_in(const std::vector<Batch>& batches) {
  int64_t n = 0;
  for (const Batch& b : batches)
    for (int len : b.lengths) n += len;
  return n;
}

// A preset edited as JSON, then validated by the library's own parser.
Recipe edited_preset(const Model& model, const std::string& preset, const std::string& name,
                     const std::function<void(nlohmann::ordered_json&)>& edit) {
  const auto known = known_names(model);
  const Recipe base = load_recipe(preset, known);
  nlohmann::ordered_json j = base.source;
  j["name"] = name;
  edit(j);
  return parse_recipe(j, base.file, known);
}

Recipe estimator_recipe(const Model& model, const std::string& estimator) {
  if (estimator == "w8a8-peg") return load_recipe("w8a8-peg", known_names(model));
  return edited_preset(model, "w8a8", "w8a8-" + estimator, [&](nlohmann::ordered_json& j) {
    if (estimator == "cross_entropy_logits")
      j["overrides"]["logits"] = {{"estimator", "cross_entropy"}};
    else
      j["activations"]["estimator"] = estimator;
  });
}

Recipe forward_recipe(const Model& model, const std::string& variant) {
  if (variant != "w8a8-per_token") return load_recipe(variant, known_names(model));
  return edited_preset(model, "w8a8", variant, [](nlohmann::ordered_json& j) {
    j["activations"]["granularity"] = "per_token";
    j["overrides"]["layers.*.attn.scores"] = {{"granularity", "per_tensor"}};
    j["overrides"]["layers.*.attn.probs"] = {{"granularity", "per_tensor"}};
  });
}

// The model with the w8a8 weights, as calibration in `tquant eval` sees it. The weights'
// values do not change the cost of calibration; one model serves every estimator.
const Model& calib_model() {
  static const std::unique_ptr<Model> m = [] {
    auto model = std::make_unique<Model>(Model::load(model_dir()));
    quantize_weights(*model, load_recipe("w8a8", known_names(*model)));
    return model;
  }();
  return *m;
}

void set_token_counters(benchmark::State& state, int64_t tokens) {
  state.counters["tokens_per_second"] = benchmark::Counter(double(tokens), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens"] = double(tokens);
}

void BM_Calibrate(benchmark::State& state, std::string estimator) {
  const Model& model = calib_model();
  const Recipe recipe = estimator_recipe(model, estimator);
  const auto& batches = calib_batches();
  size_t points = 0;
  for (auto _ : state) {
    const Calibration c = calibrate_activations(model, recipe, batches);
    points = c.points.size();
    benchmark::DoNotOptimize(c.points.size());
  }
  set_token_counters(state, tokens_in(batches));
  state.counters["points"] = double(points);
}

// The forward passes alone, on the same batches: what any calibration costs at least.
void BM_CalibForwardOnly(benchmark::State& state) {
  const Model& model = calib_model();
  const auto& batches = calib_batches();
  for (auto _ : state)
    for (const Batch& b : batches) benchmark::DoNotOptimize(model.forward(b).data());
  set_token_counters(state, tokens_in(batches));
}

// One forward batch; `variant` is "fp" or a recipe whose calibration the FakeQuantHook applies.
void BM_Forward(benchmark::State& state, std::string variant) {
  static std::map<std::string, std::pair<std::unique_ptr<Model>, std::shared_ptr<Hooks>>> prepared;
  auto& [model, hooks] = prepared[variant];
  if (!model) {
    model = std::make_unique<Model>(Model::load(model_dir()));
    if (variant != "fp") {
      const Recipe recipe = forward_recipe(*model, variant);
      quantize_weights(*model, recipe);
      const Calibration c = calibrate_activations(*model, recipe, calib_batches());
      hooks = std::make_shared<Hooks>();
      hooks->add(std::make_shared<FakeQuantHook>(c));
      // Every recipe point must be calibrated, or the comparison would flatter fake quantization.
      if (c.points.empty()) state.SkipWithError("the calibration has no points");
    }
  }
  const Batch& batch = calib_batches().front();
  for (auto _ : state) benchmark::DoNotOptimize(model->forward(batch, hooks.get()).data());
  set_token_counters(state, tokens_in({batch}));
}

void register_all() {
  for (const char* e : {"current_minmax", "minmax", "running_minmax", "mse", "mse_golden", "percentile",
                        "cross_entropy_logits", "w8a8-peg"})
    benchmark::RegisterBenchmark((std::string("BM_Calibrate/") + e).c_str(), BM_Calibrate, std::string(e))
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->Iterations(1)
        ->Repetitions(kCalibRepetitions);
  benchmark::RegisterBenchmark("BM_CalibForwardOnly", BM_CalibForwardOnly)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->Iterations(1)
      ->Repetitions(kCalibRepetitions);
  for (const char* v : {"fp", "w8a8", "w8a8-peg", "w6a6", "w8a8-per_token"})
    benchmark::RegisterBenchmark((std::string("BM_Forward/") + v).c_str(), BM_Forward, std::string(v))
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(1);
}

}  // namespace
}  // namespace tquant

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  tquant::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
