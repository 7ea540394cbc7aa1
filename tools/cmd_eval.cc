// tquant eval: perplexity (with saved-logit KL divergence) and GLUE metrics for a model folder.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "core/text_file.h"
#include "cli_registry.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "eval/glue_eval.h"
#include "eval/logits_file.h"
#include "eval/perplexity.h"
#include "model/model.h"
#include "model/point_names.h"
#include "ptq/gamma_migration.h"
#include "ptq/token_clipping.h"
#include "ptq/token_clipping_fine.h"
#include "kernels/cpu_features.h"
#include "kernels/qblock_formats.h"
#include "quant/calibration.h"
#include "quant/real_int8.h"
#include "quant/model_size.h"
#include "quant/recipe.h"
#include "tokenize/tokenizer.h"

namespace tquant::cli {
namespace {

struct Options {
  std::string model, task = "ppl", data, json, save_logits, kld_against, glue_task;
  int ctx = 512, stride = 0, batch = 0, max_length = 128;
  bool bos = false;
  int64_t max_tokens = 0;
  // Quantization
  std::string recipe, calib, save_calibration, load_calibration;
  int calib_samples = 128, calib_len = 0;
  uint64_t seed = 0;
  bool gamma_migration = false;
  std::string token_clipping;
  int fine_epochs = 3;
  double fine_lr = 1e-5;
  bool real_int8 = false;   // W8A8 linears through the int8 GEMM (quant/real_int8.h)
  bool fp_weights = false;  // dequantize a quantized checkpoint or GGUF instead of keeping it packed
  bool q8_activations = false;  // packed linears take int8 activations (kernels/qgemv_q8act.h)
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int64_t parameter_count(Model& m) {
  const auto elements = [](const PackedMatrix* p) { return p ? p->rows * p->cols : 0; };
  int64_t n = m.token_embedding.numel() + elements(m.token_embedding_packed.get()) + m.position_embedding.numel() +
              m.type_embedding.numel();
  for (Linear* l : m.linears()) {
    const bool tied = (!l->weight.empty() && l->weight.data() == m.token_embedding.data()) ||
                      (l->packed && l->packed == m.token_embedding_packed);
    if (!tied) n += l->weight.numel() + l->bias.numel() + elements(l->packed.get());
  }
  for (Norm* x : m.norms()) n += x->gamma.numel() + x->beta.numel();
  return n;
}

void progress_line(int64_t done, int64_t total) {
  if (!isatty(STDERR_FILENO)) return;
  fmt::print(stderr, "\r  scored {}/{} tokens ({:.0f}%)", done, total, 100.0 * done / total);
  if (done == total) fmt::print(stderr, "\r\033[K");
}

int run_ppl(const Options& o, Model& model, const Hooks* hooks, nlohmann::json& report) {
  const auto tokenizer = Tokenizer::from_dir(o.model);
  const std::string text = read_text_file(o.data, "data file");
  auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> tokens = tokenizer->encode(text, false).ids;
  const double tokenize_seconds = seconds_since(t0);
  const size_t all_tokens = tokens.size();
  if (o.max_tokens > 0 && static_cast<int64_t>(tokens.size()) > o.max_tokens) tokens.resize(o.max_tokens);
  fmt::print("data    {}: {} bytes, {} tokens (tokenized in {:.2f} s){}\n", o.data, text.size(), all_tokens,
             tokenize_seconds, tokens.size() < all_tokens ? fmt::format(", using the first {}", tokens.size()) : "");

  PerplexityOptions p;
  p.ctx = o.ctx;
  p.stride = o.stride > 0 ? o.stride : o.ctx;
  p.bos = o.bos;
  p.bos_id = tokenizer->bos_id();
  p.batch = o.batch;
  p.progress = progress_line;
  if (o.bos && p.bos_id < 0) fail("--bos: the tokenizer of {} has no BOS token", o.model);

  std::unique_ptr<LogitsWriter> writer;
  std::unique_ptr<KldComparer> comparer;
  ScoredTokenSink* sink = nullptr;
  if (!o.save_logits.empty() && !o.kld_against.empty()) fail("give --save-logits or --kld-against, not both");
  // With BOS a window holds ctx - 1 text tokens, so a stride of ctx becomes ctx - 1.
  const int stride = std::min(p.stride, p.ctx - (p.bos ? 1 : 0));
  const std::string protocol = scoring_protocol(p.ctx, stride, p.bos);
  if (!o.save_logits.empty()) sink = (writer = std::make_unique<LogitsWriter>(o.save_logits, protocol)).get();
  if (!o.kld_against.empty()) sink = (comparer = std::make_unique<KldComparer>(o.kld_against, protocol)).get();

  const PerplexityResult r = evaluate_perplexity(model, tokens, p, hooks, sink);
  const double tps = r.tokens_scored / r.seconds;
  fmt::print("ppl     {:.4f} ± {:.4f}  (nll {:.5f} ± {:.5f}; {} tokens scored in {} windows, ctx {}, stride {}{})\n",
             r.ppl, r.ppl_stderr, r.nll, r.nll_stderr, r.tokens_scored, r.windows, p.ctx, stride,
             p.bos ? ", BOS" : "");
  fmt::print("speed   {:.0f} tokens/s ({:.2f} s)\n", tps, r.seconds);
  report["metrics"] = {{"ppl", r.ppl}, {"ppl_stderr", r.ppl_stderr}, {"nll", r.nll}, {"nll_stderr", r.nll_stderr}};
  report["tokens_scored"] = r.tokens_scored;
  report["seconds"] = r.seconds;
  report["tokens_per_second"] = tps;
  report["data"] = o.data;
  report["ctx"] = p.ctx;
  report["stride"] = stride;
  report["bos"] = p.bos;
  if (writer) {
    writer->finish();
    fmt::print("logits  saved to {}\n", o.save_logits);
  }
  if (comparer) {
    const KldResult k = comparer->finish();
    fmt::print("kld     mean {:.6f} ± {:.6f}, median {:.6f}, p99 {:.6f}, max {:.6f}; top-1 agreement {:.2f}%\n",
               k.mean, k.stderr_mean, k.median, k.p99, k.max, 100 * k.top1_agreement);
    fmt::print("        reference ppl {:.4f} (from the saved logits)\n", k.ppl_reference);
    auto& m = report["metrics"];
    m["kld_mean"] = k.mean;
    m["kld_stderr"] = k.stderr_mean;
    m["kld_median"] = k.median;
    m["kld_p99"] = k.p99;
    m["kld_max"] = k.max;
    m["top1_agreement"] = k.top1_agreement;
    m["reference_ppl"] = k.ppl_reference;
  }
  return 0;
}

int run_glue(const Options& o, Model& model, const Hooks* hooks, nlohmann::json& report) {
  if (o.glue_task.empty()) fail("--task glue needs --glue-task (sst2, mrpc, rte, stsb, qnli, cola, wnli)");
  const GlueTask task = parse_glue_task(o.glue_task);
  const GlueDataset data = read_glue_tsv(task, o.data);
  const auto tokenizer = Tokenizer::from_dir(o.model);
  GlueEvalOptions g;
  g.max_length = o.max_length;
  if (o.batch > 0) g.batch = o.batch;
  const GlueEvalResult r = evaluate_glue(model, *tokenizer, data, g, hooks);
  fmt::print("data    {}: {} examples ({})\n", o.data, r.examples, glue_task_name(task));
  std::string line;
  for (const auto& [k, v] : r.score.metrics) line += fmt::format("{} {:.4f}  ", k, v);
  fmt::print("glue    {}= {:.4f}  ({})\n", line.empty() ? "" : line + " ", r.score.score, r.score.score_name);
  fmt::print("speed   {:.1f} examples/s, {:.0f} tokens/s ({:.2f} s)\n", r.examples / r.seconds, r.tokens / r.seconds,
             r.seconds);
  report["metrics"] = r.score.metrics;
  report["metrics"]["score"] = r.score.score;
  report["metrics"]["score_name"] = r.score.score_name;
  report["glue_task"] = glue_task_name(task);
  report["examples"] = r.examples;
  report["tokens_scored"] = r.tokens;
  report["seconds"] = r.seconds;
  report["data"] = o.data;
  return 0;
}

// Calibration must never see the evaluation data.
void check_calibration_is_not_evaluation(const Options& o) {
  std::error_code ec;
  if (std::filesystem::equivalent(o.calib, o.data, ec) || read_text_file(o.calib, "calibration file") == read_text_file(o.data, "data file"))
    fail("--calib {} is the evaluation data ({}); calibrate on other data (e.g. the train or validation split)",
         o.calib, o.data);
}

std::vector<Batch> calibration_batches(const Options& o, const Model& model) {
  const auto tokenizer = Tokenizer::from_dir(o.model);
  if (o.task == "glue") {
    // GLUE: calibrate on examples of the task's training split.
    const GlueDataset data = read_glue_tsv(parse_glue_task(o.glue_task), o.calib);
    std::vector<size_t> order(data.examples.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::mt19937_64 rng(o.seed);
    std::shuffle(order.begin(), order.end(), rng);
    order.resize(std::min<size_t>(order.size(), o.calib_samples));
    std::vector<Batch> out;
    for (size_t i = 0; i < order.size(); i += 32) {
      std::vector<size_t> part(order.begin() + i, order.begin() + std::min(order.size(), i + 32));
      out.push_back(glue_batch(*tokenizer, data, part, o.max_length));
    }
    return out;
  }
  const std::vector<int32_t> tokens = tokenizer->encode(read_text_file(o.calib, "calibration file"), false).ids;
  const int length = o.calib_len > 0 ? o.calib_len : o.ctx;
  return calibration_windows(tokens, o.calib_samples, length, o.seed, o.bos ? tokenizer->bos_id() : -1,
                             std::max(1, 2048 / length));
}

// Applies the recipe: quantizes the weights and returns the activation hooks (null without one).
std::unique_ptr<Hooks> prepare_quantization(const Options& o, Model& model, nlohmann::json& report) {
  if (o.gamma_migration) {
    const auto g = migrate_gamma(model);
    fmt::print("gamma   migrated {} norms ({} channels kept their γ: too close to 0)\n", g.norms.size(),
               g.channels_kept);
    report["gamma_migration"] = {{"norms", g.norms}, {"channels_kept", g.channels_kept}};
  }
  if (o.recipe.empty()) {
    if (!o.calib.empty() || !o.load_calibration.empty() || !o.save_calibration.empty())
      fail("--calib, --load-calibration and --save-calibration need --recipe");
    if (o.real_int8) fail("--real-int8 needs --recipe (a W8A8 recipe such as w8a8 or w8a8-peg)");
    return nullptr;
  }
  const Recipe recipe = load_recipe(o.recipe, documented_recipe_names(model.config().layers));
  // Counted before the weights are fake-quantized in place (which unties a tied head).
  const ModelSize size = model_size(model, &recipe);
  fmt::print("size    {}\n", describe(size));
  report["model_bytes"] = size.quantized_bytes;
  report["fp32_bytes"] = size.fp32_bytes;
  const auto t0 = std::chrono::steady_clock::now();
  Calibration c;
  std::map<std::string, std::string> weights;
  std::map<std::string, QuantParams> weight_params;  // what quantize_weights applied, for --real-int8
  if (!o.token_clipping.empty()) {
    if (o.token_clipping != "coarse" && o.token_clipping != "fine")
      fail("--token-clipping must be \"coarse\" or \"fine\", got \"{}\"", o.token_clipping);
    if (o.calib.empty()) fail("--token-clipping needs --calib FILE");
    check_calibration_is_not_evaluation(o);
    // The ratio search runs with FP weights, as in the paper; the weights are quantized after.
    const auto batches = calibration_batches(o, model);
    const TokenClippingResult t = token_wise_clipping_coarse(model, recipe, batches);
    c = t.calibration;
    if (o.token_clipping == "fine") {
      const auto t1 = std::chrono::steady_clock::now();
      TokenClippingFineOptions fo;
      fo.epochs = o.fine_epochs;
      fo.lr = o.fine_lr;
      const TokenClippingFineResult f = token_wise_clipping_fine(model, c, batches, fo);
      c = f.calibration;
      fmt::print("clip    token-wise clipping (fine): {} epochs of LSQ+ on the ranges, logit MSE {:.5g} -> {:.5g} in {:.2f} s\n",
                 fo.epochs, f.mse_before, f.mse_after, seconds_since(t1));
      report["token_clipping_fine"] = {{"epochs", fo.epochs}, {"lr", fo.lr}, {"epoch_mse", f.epoch_mse},
                                       {"mse_before", f.mse_before}, {"mse_after", f.mse_after},
                                       {"seconds", seconds_since(t1)}};
    }
    weights = quantize_weights(model, recipe, {}, &weight_params);
    fmt::print("clip    token-wise clipping (coarse) chose ratio {:.2f} from {} candidates in {:.2f} s (logit MSE {:.5g}, "
               "at 1.00: {:.5g})\n", t.ratio, t.grid.size(), seconds_since(t0),
               *std::min_element(t.logits_mse.begin(), t.logits_mse.end()), t.logits_mse.front());
    report["token_clipping"] = {{"stage", "coarse"}, {"ratio", t.ratio}, {"grid", t.grid}, {"logits_mse", t.logits_mse},
                                {"seconds", seconds_since(t0)}};
  } else {
    if (!o.load_calibration.empty()) c = load_calibration(o.load_calibration);
    weights = quantize_weights(model, recipe, c.weight_params, &weight_params);
  }
  if (!o.token_clipping.empty()) {
    // calibrated above
  } else if (!o.load_calibration.empty()) {
    if (c.recipe != recipe.name)
      fail("{}: calibrated for recipe \"{}\", not \"{}\"", o.load_calibration, c.recipe, recipe.name);
    fmt::print("calib   loaded {} activation quantizers from {}\n", c.points.size(), o.load_calibration);
  } else if (recipe.activations) {
    if (o.calib.empty()) fail("recipe {} quantizes activations: give --calib FILE (or --load-calibration)", recipe.name);
    check_calibration_is_not_evaluation(o);
    const auto batches = calibration_batches(o, model);
    c = calibrate_activations(model, recipe, batches);
    int64_t tokens = 0;
    for (const Batch& b : batches)
      for (int len : b.lengths) tokens += len;
    fmt::print("calib   {} activation quantizers from {} samples ({} tokens) of {} in {:.2f} s (seed {})\n",
               c.points.size(), o.calib_samples, tokens, o.calib, seconds_since(t0), o.seed);
    report["calibration"] = {{"file", o.calib}, {"samples", o.calib_samples}, {"tokens", tokens}, {"seed", o.seed},
                             {"seconds", seconds_since(t0)}};
  }
  c.recipe = recipe.name;
  c.weights = weights;
  if (!o.save_calibration.empty()) {
    save_calibration(o.save_calibration, c);
    fmt::print("calib   saved to {}\n", o.save_calibration);
  }
  fmt::print("recipe  {}: {} weight tensors and {} activation points quantized\n", recipe.name, weights.size(),
             c.points.size());
  report["recipe"] = {{"name", recipe.name}, {"file", recipe.file.string()}, {"weights_quantized", weights.size()},
                      {"activation_points", c.points.size()}};
  auto hooks = std::make_unique<Hooks>();
  if (o.real_int8) {
    const RealInt8Setup s = enable_real_int8(model, c, weight_params);
    if (s.int8_layers.empty())
      fail("--real-int8: recipe {} quantizes no linear's weights and input to 8 bits or fewer{}", recipe.name,
           s.fp_layers.empty() ? "" : fmt::format(" (e.g. {}: {})", s.fp_layers[0].first, s.fp_layers[0].second));
    fmt::print("int8    {} linears run the int8 GEMM ({}), {} stay float{}\n", s.int8_layers.size(),
               simd_level_name(simd_level()), s.fp_layers.size(),
               s.fp_layers.empty() ? "" : fmt::format(" (e.g. {}: {})", s.fp_layers[0].first, s.fp_layers[0].second));
    nlohmann::json fp = nlohmann::json::object();
    for (const auto& [layer, why] : s.fp_layers) fp[layer] = why;
    report["real_int8"] = {{"int8_layers", s.int8_layers}, {"float_layers", fp}, {"simd", simd_level_name(simd_level())}};
    hooks->add(s.hook);
  } else {
    hooks->add(std::make_shared<FakeQuantHook>(c));
  }
  return hooks;
}

int run(const Options& o) {
  if (o.data.empty()) fail("--data is required");
  auto t0 = std::chrono::steady_clock::now();
  // A quantized checkpoint or GGUF stays packed for the low-bit kernels unless something needs
  // float weights (a recipe fake-quantizes them, Gamma Migration rescales them).
  const bool keep_packed = !o.fp_weights && o.recipe.empty() && !o.gamma_migration;
  Model model = Model::load(o.model, keep_packed);
  fmt::print("model   {} ({}, {:.3f}M parameters, loaded in {:.2f} s)\n", o.model, model.config().architecture,
             parameter_count(model) / 1e6, seconds_since(t0));
  nlohmann::json report = {{"task", o.task}, {"model", o.model}};
  int packed = 0;
  for (Linear* l : model.linears()) packed += l->packed != nullptr;
  if (packed > 0) {
    fmt::print("kernels {} linears held packed, multiplied by the low-bit kernels ({})\n", packed,
               simd_level_name(simd_level()));
    report["packed_linears"] = packed;
    report["simd"] = simd_level_name(simd_level());
  }
  if (model.token_embedding_packed) {
    const char* format = qformat_name(model.token_embedding_packed->format);
    fmt::print("kernels token embedding held packed ({}): rows decoded on lookup{}\n", format,
               model.lm_head.packed == model.token_embedding_packed ? ", the tied head multiplies the same blocks" : "");
    report["packed_token_embedding"] = format;
  }
  if (o.q8_activations) {
    if (packed == 0)
      fail("--q8-activations needs weights held packed: a tquant quantized checkpoint or a GGUF with q4_0/q4_1/q8_0 "
           "linears, without --fp-weights, --recipe or --gamma-migration");
    const int n = model.enable_q8_activations();
    if (n == 0) fail("--q8-activations: no packed linear of {} has groups of a multiple of 32 columns", o.model);
    fmt::print("q8act   {} of {} packed linears take int8 activations (llama.cpp-style blocks of 32; results change "
               "slightly)\n", n, packed);
    report["q8_activations"] = {{"linears", n}, {"float_activation_linears", packed - n}};
  }
  if (o.task != "ppl" && o.task != "glue") fail("--task must be ppl or glue, got \"{}\"", o.task);
  const auto hooks = prepare_quantization(o, model, report);
  const int rc = o.task == "ppl" ? run_ppl(o, model, hooks.get(), report) : run_glue(o, model, hooks.get(), report);
  if (!o.json.empty()) write_text_atomically(o.json, report.dump(2) + "\n");
  return rc;
}

const bool registered = register_command("eval", "Evaluate a model: perplexity (and KL divergence) or GLUE",
                                         [](CLI::App& app) {
  auto o = std::make_shared<Options>();
  app.add_option("--model", o->model, "Model folder (config.json, safetensors, tokenizer.json)")->required();
  app.add_option("--task", o->task, "ppl or glue")->capture_default_str();
  app.add_option("--data", o->data, "Text file (ppl) or GLUE TSV (glue)");
  app.add_option("--ctx", o->ctx, "Tokens per window")->capture_default_str();
  app.add_option("--stride", o->stride, "Tokens between window starts (default: --ctx, no overlap)");
  app.add_flag("--bos", o->bos, "Start every window with the BOS token");
  app.add_option("--max-tokens", o->max_tokens, "Use only the first N tokens of the data");
  app.add_option("--batch", o->batch, "Windows (ppl) or examples (glue) per forward pass");
  app.add_option("--save-logits", o->save_logits, "Save the scored tokens' log-probabilities (fp16) for --kld-against");
  app.add_option("--kld-against", o->kld_against, "Report KL divergence against logits saved by --save-logits");
  app.add_option("--glue-task", o->glue_task, "sst2, mrpc, rte, stsb, qnli, cola or wnli");
  app.add_option("--max-length", o->max_length, "GLUE: tokens per example after truncation")->capture_default_str();
  app.add_option("--json", o->json, "Write the results as JSON");
  app.add_option("--recipe", o->recipe, "Quantization recipe: a preset name (recipes/) or a JSON file");
  app.add_option("--calib", o->calib, "Calibration data: text (ppl) or the task's train TSV (glue)");
  app.add_option("--calib-samples", o->calib_samples, "Calibration windows (ppl) or examples (glue)")->capture_default_str();
  app.add_option("--calib-len", o->calib_len, "Tokens per calibration window (default: --ctx)");
  app.add_option("--seed", o->seed, "Seed for choosing calibration samples")->capture_default_str();
  app.add_option("--save-calibration", o->save_calibration, "Save the calibrated ranges as JSON");
  app.add_option("--load-calibration", o->load_calibration, "Use ranges saved by --save-calibration");
  app.add_flag("--gamma-migration", o->gamma_migration, "Apply Outlier Suppression's Gamma Migration first");
  app.add_flag("--real-int8", o->real_int8,
               "Run linears whose weights and inputs the recipe quantizes to <= 8 bits with the int8 GEMM");
  app.add_flag("--fp-weights", o->fp_weights,
               "Dequantize a quantized checkpoint or GGUF to float32 instead of multiplying it packed");
  app.add_flag("--q8-activations", o->q8_activations,
               "Packed linears round their input to int8 blocks of 32 and multiply in integers (llama.cpp-style; "
               "changes results slightly)");
  app.add_option("--token-clipping", o->token_clipping,
                 "Outlier Suppression's Token-Wise Clipping: coarse, or fine (coarse, then LSQ+ on the ranges)");
  app.add_option("--fine-epochs", o->fine_epochs, "Token-Wise Clipping fine stage: epochs over the calibration batches")
      ->capture_default_str();
  app.add_option("--fine-lr", o->fine_lr, "Token-Wise Clipping fine stage: Adam learning rate (cosine to 0)")
      ->capture_default_str();
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace tquant::cli
