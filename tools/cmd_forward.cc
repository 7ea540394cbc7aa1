// tquant forward: run the FP32 model on text or on explicit ids and save the head's output.
#include <fmt/format.h>

#include "cli_registry.h"
#include "core/error.h"
#include "io/batch_json.h"
#include "io/npy.h"
#include "model/model.h"
#include "ptq/gamma_migration.h"
#include "tokenize/tokenizer.h"

namespace tquant::cli {
namespace {

struct Options {
  std::string model, ids_json, text, text_pair, out;
  bool no_special = false;
  bool gamma_migration = false;
};

int run(const Options& o) {
  Model model = Model::load(o.model);
  if (o.gamma_migration) migrate_gamma(model);
  Batch batch;
  if (!o.ids_json.empty()) {
    batch = batch_from_json(o.ids_json);
  } else {
    const auto tok = Tokenizer::from_dir(o.model);
    const Encoding e = o.text_pair.empty() ? tok->encode(o.text, !o.no_special)
                                           : tok->encode_pair(o.text, o.text_pair, !o.no_special);
    if (e.ids.empty()) fail("the text tokenizes to no tokens");
    batch = Batch::single(e.ids, e.type_ids);
  }
  const Tensor out = model.forward(batch);
  write_npy(o.out, out);
  fmt::print("wrote {} {} to {}\n", "float32", shape_str(out.shape()), o.out);
  return 0;
}

const bool registered = register_command(
    "forward", "Run the FP32 model once and save the head's output as .npy", [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      app.add_option("--model", o->model, "Model folder (config.json, safetensors, tokenizer.json)")->required();
      auto* ids = app.add_option("--ids-json", o->ids_json, "JSON with input_ids [, token_type_ids, attention_mask]");
      auto* text = app.add_option("--text", o->text, "Text to tokenize and run");
      app.add_option("--text-pair", o->text_pair, "Second segment (sentence-pair models)")->needs(text);
      app.add_flag("--no-special", o->no_special, "Do not add special tokens (BOS, [CLS]/[SEP])");
      app.add_flag("--gamma-migration", o->gamma_migration,
                   "Apply Gamma Migration first (outputs must not change beyond rounding)");
      app.add_option("--out", o->out, "Output .npy file")->required();
      ids->excludes(text);
      app.callback([ids, text] {
        if (ids->count() == 0 && text->count() == 0) throw CLI::ValidationError("give --ids-json or --text");
      });
      return [o] { return run(*o); };
    });

}  // namespace
}  // namespace tquant::cli
