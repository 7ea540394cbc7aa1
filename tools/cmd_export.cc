// tquant export: a model folder (FP or a tquant quantized checkpoint) as a deployment file.
// Only GGUF (llama.cpp) for now; see export/gguf_export.h for what each tensor becomes.
#include <fmt/format.h>

#include <chrono>
#include <memory>
#include <string>

#include "cli_registry.h"
#include "core/error.h"
#include "export/gguf_export.h"

namespace tquant::cli {
namespace {

struct Options {
  std::string model, format = "gguf", type, out;
};

int run(const Options& o) {
  if (o.format != "gguf") fail("--format \"{}\": tquant exports gguf only", o.format);
  const auto type = gguf::parse_type(o.type);
  if (!type) fail("--type \"{}\": expected f32, f16, q4_0, q4_1 or q8_0", o.type);
  const auto t0 = std::chrono::steady_clock::now();
  const gguf::ExportReport r = gguf::export_gguf(o.model, *type, o.out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string types;
  for (const auto& [name, n] : r.tensors_by_type) types += fmt::format("{}{} {}", types.empty() ? "" : ", ", n, name);
  fmt::print("model   {} ({})\n", o.model, r.quantized_source ? "tquant quantized checkpoint" : "FP checkpoint");
  fmt::print("tensors {}; {} linears mapped block for block from their codes, {} tensors rounded or quantized here\n",
             types, r.exact, r.rounded);
  for (const std::string& n : r.notes) fmt::print("note    {}\n", n);
  fmt::print("wrote   {} ({:.2f} MiB, GGUF v3, {}) in {:.2f} s\n", o.out, r.file_bytes / 1048576.0, o.type, seconds);
  return 0;
}

const bool registered = register_command(
    "export", "Export a model as GGUF for llama.cpp (exact for tquant --format q4_0/q4_1/q8_0 checkpoints)",
    [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      app.add_option("--model", o->model, "Model folder (config.json, safetensors, tokenizer.json)")->required();
      app.add_option("--format", o->format, "Output format: gguf")->capture_default_str();
      app.add_option("--type", o->type, "Tensor type: f32, f16, q4_0, q4_1 or q8_0")->required();
      app.add_option("--out", o->out, "Output file (written atomically)")->required();
      return [o] { return run(*o); };
    });

}  // namespace
}  // namespace tquant::cli
