// tquant analyze: outlier analysis of a model's activations and attention on sample text
// (Bondarenko et al.'s structured outliers and "no-op" heads, METHODS.md §2). Writes
// OUT/analysis.json, OUT/report.html (self-contained) and each plot as OUT/*.svg.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "core/text_file.h"
#include "analysis/analysis_json.h"
#include "analysis/analyze.h"
#include "analysis/html_report.h"
#include "analysis/plots.h"
#include "cli_registry.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "model/model.h"
#include "tokenize/tokenizer.h"

namespace tquant::cli {
namespace {

struct Options {
  std::string model, data, out;
  int samples = 16, seq_len = 128;
  std::optional<uint64_t> seed;
  std::vector<std::string> points;
};

void progress(int pass, size_t done, size_t total) {
  if (!isatty(STDERR_FILENO)) return;
  fmt::print(stderr, "\r  pass {}/2: {}/{} windows", pass, done, total);
  if (pass == 2 && done == total) fmt::print(stderr, "\r\033[K");
}

void print_findings(const nlohmann::json& a) {
  for (const auto& p : a["points"]) {
    if (p["outlier_dims"].empty()) continue;
    std::string dims;
    for (const auto& d : p["outlier_dims"]) dims += fmt::format(" {}({:.3g})", d["dim"].get<int>(), d["max_abs"].get<double>());
    fmt::print("outliers {}:{}\n", p["name"].get<std::string>(), dims);
  }
  std::vector<nlohmann::json> heads(a["attention"]["heads"].begin(), a["attention"]["heads"].end());
  std::stable_sort(heads.begin(), heads.end(), [](const auto& x, const auto& y) {
    return x["noop_mass"].template get<double>() > y["noop_mass"].template get<double>();
  });
  for (size_t i = 0; i < heads.size() && i < 3; ++i)
    fmt::print("no-op    layer {} head {}: {:.3f} on special tokens (uniform {:.3f}), {:.3f} on delimiters (uniform {:.3f})\n",
               heads[i]["layer"].get<int>(), heads[i]["head"].get<int>(), heads[i]["special_mass"].get<double>(),
               heads[i]["uniform_special"].get<double>(), heads[i]["delimiter_mass"].get<double>(),
               heads[i]["uniform_delimiter"].get<double>());
}

// --out is replaced whole, so an existing folder must be an earlier analysis (or empty): a
// mistyped --out must not wipe unrelated files. Checked before the work starts.
void check_out_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path out(dir);
  if (!fs::exists(out)) return;
  if (!fs::is_directory(out)) fail("--out {}: exists and is not a folder", dir);
  if (!fs::is_empty(out) && !fs::exists(out / "analysis.json"))
    fail("--out {}: the folder exists and holds no analysis.json; give a new folder (it is replaced whole)", dir);
}

int run(const Options& o) {
  using namespace analysis;
  check_out_folder(o.out);
  const auto t0 = std::chrono::steady_clock::now();
  const Model model = Model::load(o.model);
  const auto tokenizer = Tokenizer::from_dir(o.model);
  const std::vector<int32_t> tokens = tokenizer->encode(read_text_file(o.data, "data file"), false).ids;
  const SpecialTemplate special = special_template(*tokenizer);
  const TokenCatalog catalog(*tokenizer, special_token_ids(*tokenizer, special));

  AnalysisOptions a;
  a.samples = o.samples;
  a.seq_len = o.seq_len;
  a.seed = o.seed;
  a.point_globs = o.points;
  a.progress = progress;
  const AnalysisResult result = analyze(model, catalog, special, tokens, a);

  Provenance prov{o.model, o.data, o.samples, o.seq_len, o.seed, o.points};
  nlohmann::json doc = analysis_json(result, model.config(), catalog, prov);
  const std::vector<Plot> plots = make_plots(doc);
  nlohmann::json files = nlohmann::json::array();
  for (const Plot& p : plots) files.push_back({{"file", p.file}, {"title", p.title}});
  doc["plots"] = files;
  const std::string html = html_report(doc, plots);

  // The folder appears complete or not at all.
  write_directory_atomically(o.out, [&](const std::filesystem::path& dir) {
    write_text_atomically(dir / "analysis.json", doc.dump(1) + "\n");
    write_text_atomically(dir / "report.html", html);
    for (const Plot& p : plots) write_text_atomically(dir / p.file, p.svg);
  });

  fmt::print("model    {} ({})\n", o.model, model.config().architecture);
  fmt::print("data     {}: {} tokens; {} windows of {} tokens{}\n", o.data, tokens.size(), result.starts.size(),
             result.seq_len, result.seq_len_capped ? " (capped at the model's positions)" : "");
  fmt::print("analysed {} tokens at {} points, {} heads\n", result.tokens, result.points.size(), result.heads.size());
  print_findings(doc);
  fmt::print("wrote    {}/analysis.json, report.html and {} plots ({:.2f} s)\n", o.out, plots.size(),
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

const bool registered = register_command(
    "analyze", "Find outlier dimensions and no-op attention heads; write analysis.json and an HTML report",
    [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      app.add_option("--model", o->model, "Model folder (config.json, safetensors, tokenizer.json)")->required();
      app.add_option("--data", o->data, "Text file to take the windows from")->required();
      app.add_option("--out", o->out, "Output folder (replaced whole): analysis.json, report.html, *.svg")->required();
      app.add_option("--samples", o->samples, "Windows to analyse")->capture_default_str();
      app.add_option("--seq-len", o->seq_len, "Tokens per window including special tokens (capped at the model's "
                                              "max positions)")->capture_default_str();
      app.add_option("--seed", o->seed, "Random window starts from this seed (default: evenly spaced windows)");
      app.add_option("--points", o->points, "Only points whose names match these globs, e.g. 'layers.*.ffn.residual_sum' "
                                            "(comma-separated or repeated; default: all)")
          ->delimiter(',');
      return [o] { return run(*o); };
    });

}  // namespace
}  // namespace tquant::cli
