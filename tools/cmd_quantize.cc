// tquant quantize: layer-wise weight quantization (RTN, GPTQ/OPTQ, AdaRound, Z-Fold, aespa) of
// every linear inside the blocks, calibrated on text, written as a quantized checkpoint folder
// (or, with --fake, as a dequantized FP checkpoint).
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/text_file.h"
#include "cli_registry.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "export/gguf_reader.h"
#include "model/model.h"
#include "quant/calibration.h"
#include "tokenize/tokenizer.h"
#include "wquant/pipeline.h"
#include "wquant/quantized_checkpoint.h"

namespace tquant::cli {
namespace {

struct Options {
  std::string model, method = "gptq", calib, out, json, format;
  bool wbits_given = false, group_given = false;
  int wbits = 4;
  int64_t group = 0;
  bool sym = false, asym = false, act_order = false, no_optq_init = false, no_learn_rounding = false;
  bool no_zfold = false, mse = false, fake = false, bos = false;
  int iters = 0;
  float lr = 0;
  double percdamp = 0.01;
  int calib_samples = 128, calib_len = 0;
  uint64_t seed = 0;
};

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;  // Linux reports KiB
}

std::string clock_text(double seconds) {
  const int s = static_cast<int>(seconds + 0.5);
  return s >= 60 ? fmt::format("{}m{:02d}s", s / 60, s % 60) : fmt::format("{}s", s);
}

void show_progress(const wq::Progress& p) {
  const std::string left = p.remaining < 0 ? "" : fmt::format(", about {} left", clock_text(p.remaining));
  const std::string iter = p.iters > 0 ? fmt::format(" iteration {}/{}", p.iter, p.iters) : "";
  const std::string line = fmt::format("block {}/{} {}{} ({} elapsed{})", p.block + 1, p.blocks, p.layer, iter,
                                       clock_text(p.elapsed), left);
  if (isatty(STDERR_FILENO))
    fmt::print(stderr, "\r\033[K{}", line);
  else if (p.iters == 0)
    fmt::print(stderr, "{}\n", line);
}

// --format q4_0|q4_1|q8_0: the grid of a GGUF block type (export/gguf_export.h), so that
// `tquant export --format gguf` maps every quantized layer onto it block for block.
wq::WeightFormat weight_format(const Options& o) {
  if (o.sym && o.asym) fail("give --sym or --asym, not both");
  wq::WeightFormat f;
  f.bits = o.wbits;
  f.group = o.group;
  f.symmetric = o.sym;
  if (o.format.empty()) return f;
  struct Preset {
    const char* name;
    int bits;
    bool symmetric;
  };
  static const Preset presets[] = {{"q4_0", 4, true}, {"q4_1", 4, false}, {"q8_0", 8, true}};
  const Preset* p = nullptr;
  for (const Preset& x : presets)
    if (o.format == x.name) p = &x;
  if (!p) fail("--format \"{}\": expected q4_0, q4_1 or q8_0 (GGUF block types)", o.format);
  if (o.wbits_given && o.wbits != p->bits) fail("--format {} quantizes to {} bits, not --wbits {}", p->name, p->bits, o.wbits);
  if (p->symmetric ? o.asym : o.sym)
    fail("--format {} is {}; drop --{}", p->name, p->symmetric ? "symmetric" : "asymmetric", p->symmetric ? "asym" : "sym");
  // GGUF blocks hold 32 weights with one scale: any group made of whole blocks maps exactly.
  if (o.group_given && !(o.group == 0 || o.group % 32 == 0))
    fail("--format {} stores one scale per 32 weights; --group {} is not a multiple of 32 (nor 0, per channel)",
         p->name, o.group);
  f.bits = p->bits;
  f.symmetric = p->symmetric;
  f.group = o.group_given ? o.group : 32;
  f.fp16 = true;
  return f;
}

int run(const Options& o) {
  const auto t0 = std::chrono::steady_clock::now();
  wq::PipelineOptions p;
  p.method = wq::parse_method(o.method);
  p.format = weight_format(o);
  p.rtn_mse = o.mse;
  p.act_order = o.act_order;
  p.optq_init = !o.no_optq_init;
  p.learn_rounding = !o.no_learn_rounding;
  p.zfold = !o.no_zfold;
  p.iters = o.iters;
  p.lr = o.lr;
  p.percdamp = o.percdamp;
  if (o.mse && p.method != wq::Method::RTN) fail("--mse chooses RTN's ranges; it applies to --method rtn only");

  if (gguf::is_gguf_path(o.model))
    fail("{}: a GGUF file; tquant quantize reads a Hugging Face model folder (the FP or tquant checkpoint it came "
         "from)", o.model);
  wq::check_output_folder(o.model, o.out);
  Model model = Model::load(o.model);
  const auto tokenizer = Tokenizer::from_dir(o.model);
  const std::vector<int32_t> tokens = tokenizer->encode(read_text_file(o.calib, "calibration file"), false).ids;
  const int length = o.calib_len > 0 ? o.calib_len : std::min(2048, model.config().max_positions);
  if (o.bos && tokenizer->bos_id() < 0) fail("--bos: the tokenizer of {} has no BOS token", o.model);
  const std::vector<Batch> calib = calibration_windows(tokens, o.calib_samples, length, o.seed,
                                                       o.bos ? tokenizer->bos_id() : -1, std::max(1, 4096 / length));
  fmt::print("model   {} ({}, {} blocks)\n", o.model, model.config().architecture, model.config().layers);
  fmt::print("calib   {} windows of {} tokens from {} (seed {})\n", o.calib_samples, length, o.calib, o.seed);
  fmt::print("method  {}, W{} {}{}{}\n", wq::method_name(p.method), p.format.bits,
             p.format.group ? fmt::format("group {}", p.format.group) : std::string("per channel"),
             p.format.symmetric ? " symmetric" : " asymmetric",
             p.format.fp16 ? fmt::format(", fp16 grid (GGUF {})", o.format) : std::string());

  const wq::QuantizeReport r = wq::quantize_model(model, calib, p, show_progress);
  if (isatty(STDERR_FILENO)) fmt::print(stderr, "\r\033[K");

  double before = 0, after = 0;
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : r.layers) {
    before += l.objective_rtn;
    after += l.objective;
    nlohmann::json j = {{"name", l.name}, {"objective_rtn", l.objective_rtn}, {"objective", l.objective},
                        {"objective_kind", l.objective_kind}, {"seconds", l.seconds}, {"dead_inputs", l.dead_inputs}};
    if (l.zfold_rounds >= 0) j["zfold_rounds"] = l.zfold_rounds;
    if (p.method == wq::Method::Aespa) j["unrepresentable_init_codes"] = l.unrepresentable;
    layers.push_back(std::move(j));
  }
  const nlohmann::json method_info = {
      {"method", wq::method_name(p.method)}, {"act_order", p.act_order}, {"calibration", o.calib},
      {"calibration_samples", o.calib_samples}, {"calibration_length", length}, {"seed", o.seed},
      {"folded_norms", r.folded_norms}};
  const auto tw = std::chrono::steady_clock::now();
  wq::write_quantized_checkpoint(model, r.weights, method_info, o.out, o.fake);
  const double write_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - tw).count();
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("done    {} linears in {:.2f} s (statistics and block passes {:.2f} s); objective {:.6g} -> {:.6g} "
             "(min-max RTN -> {})\n", r.layers.size(), r.seconds, r.statistics_seconds, before, after,
             wq::method_name(p.method));
  fmt::print("wrote   {}{} in {:.2f} s; total {:.2f} s, peak RSS {:.0f} MiB\n", o.out, o.fake ? " (fake-quantized FP)" : "",
             write_seconds, total, peak_rss_mib());
  if (!o.json.empty()) {
    const nlohmann::json report = {
        {"model", o.model}, {"out", o.out}, {"fake", o.fake}, {"method", method_info},
        {"format", {{"bits", p.format.bits}, {"group_size", p.format.group}, {"sym", p.format.symmetric},
                    {"fp16_grid", p.format.fp16}}},
        {"layers", layers}, {"totals", {{"objective_rtn", before}, {"objective", after}, {"seconds", total},
                                        {"quantize_seconds", r.seconds}, {"statistics_seconds", r.statistics_seconds},
                                        {"write_seconds", write_seconds}, {"calibration_tokens", r.calibration_tokens},
                                        {"peak_rss_mib", peak_rss_mib()}}}};
    write_text_atomically(o.json, report.dump(2) + "\n");
  }
  return 0;
}

const bool registered = register_command(
    "quantize", "Layer-wise weight quantization (RTN, GPTQ, AdaRound, Z-Fold, aespa) into a quantized checkpoint",
    [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      app.add_option("--model", o->model, "Model folder (config.json, safetensors, tokenizer.json)")->required();
      app.add_option("--method", o->method, "rtn, gptq, adaround, zfold or aespa")->capture_default_str();
      CLI::Option* wbits = app.add_option("--wbits", o->wbits, "Weight bits (2-8)")->capture_default_str();
      CLI::Option* group = app.add_option("--group", o->group, "Input columns per scale (0: one scale per output channel)")
          ->capture_default_str();
      app.add_option("--format", o->format,
                     "q4_0, q4_1 or q8_0: the grid of that GGUF block type (bits, symmetry, group 32, fp16 scales), "
                     "for an exact `tquant export --format gguf`");
      app.add_flag("--sym", o->sym, "Symmetric grid (zero point 2^(b-1))");
      app.add_flag("--asym", o->asym, "Asymmetric grid (the default)");
      app.add_flag("--mse", o->mse, "RTN: MSE ranges instead of min-max");
      app.add_flag("--act-order", o->act_order, "GPTQ: process columns by decreasing diag(H) (always on for zfold/aespa)");
      app.add_flag("--no-optq-init", o->no_optq_init, "aespa: start learned rounding from RTN instead of OPTQ");
      app.add_flag("--no-learn-rounding", o->no_learn_rounding, "aespa: stop after the OPTQ init");
      app.add_flag("--no-zfold", o->no_zfold, "aespa: per-row clip grid instead of Z-Fold scales");
      app.add_option("--iters", o->iters, "Learned-rounding iterations (default: aespa 2000, adaround 5000)");
      app.add_option("--lr", o->lr, "Learned-rounding Adam learning rate (default: aespa 0.015, adaround 0.001)");
      app.add_option("--percdamp", o->percdamp, "Damping added to diag(H), relative to its mean")->capture_default_str();
      app.add_option("--calib", o->calib, "Calibration text (never the evaluation data)")->required();
      app.add_option("--calib-samples", o->calib_samples, "Calibration windows")->capture_default_str();
      app.add_option("--calib-len", o->calib_len, "Tokens per window (default: min(2048, the model's positions))");
      app.add_option("--seed", o->seed, "Seed for choosing the windows")->capture_default_str();
      app.add_flag("--bos", o->bos, "Start every calibration window with BOS");
      app.add_option("--out", o->out, "Output model folder (written atomically)")->required();
      app.add_flag("--fake", o->fake, "Write dequantized FP32 weights instead of packed codes");
      app.add_option("--json", o->json, "Write the per-layer report as JSON");
      return [o, wbits, group] {
        o->wbits_given = wbits->count() > 0;
        o->group_given = group->count() > 0;
        return run(*o);
      };
    });

}  // namespace
}  // namespace tquant::cli
