// tquant forward: run the FP32 model on text or on explicit ids and save the head's output.
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_registry.h"
#include "core/error.h"
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

std::vector<std::vector<int32_t>> int_rows(const nlohmann::json& j, const std::string& file, const char* key) {
  if (!j.is_array()) fail("{}: \"{}\" must be a list of lists of integers", file, key);
  std::vector<std::vector<int32_t>> rows;
  for (const auto& row : j) {
    if (!row.is_array()) fail("{}: \"{}\" must be a list of lists of integers", file, key);
    rows.emplace_back();
    for (const auto& v : row) {
      if (!v.is_number_integer()) fail("{}: \"{}\" holds a non-integer {}", file, key, v.dump());
      rows.back().push_back(v.get<int32_t>());
    }
  }
  return rows;
}

Batch batch_from_json(const std::string& file) {
  std::ifstream in(file);
  if (!in) fail("{}: cannot open", file);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: malformed JSON: {}", file, e.what());
  }
  if (!j.contains("input_ids")) fail("{}: field \"input_ids\" is missing", file);
  const auto ids = int_rows(j["input_ids"], file, "input_ids");
  if (ids.empty() || ids[0].empty()) fail("{}: \"input_ids\" is empty", file);
  Batch b;
  b.batch = static_cast<int>(ids.size());
  b.seq = static_cast<int>(ids[0].size());
  for (const auto& r : ids) {
    if (static_cast<int>(r.size()) != b.seq) fail("{}: all rows of \"input_ids\" must have the same length", file);
    b.ids.insert(b.ids.end(), r.begin(), r.end());
  }
  if (j.contains("token_type_ids"))
    for (const auto& r : int_rows(j["token_type_ids"], file, "token_type_ids")) b.type_ids.insert(b.type_ids.end(), r.begin(), r.end());
  b.lengths.assign(b.batch, b.seq);
  if (j.contains("attention_mask")) {
    const auto mask = int_rows(j["attention_mask"], file, "attention_mask");
    if (static_cast<int>(mask.size()) != b.batch) fail("{}: \"attention_mask\" must have one row per sequence", file);
    for (int i = 0; i < b.batch; ++i) {
      int len = 0;
      while (len < static_cast<int>(mask[i].size()) && mask[i][len] == 1) ++len;
      for (size_t t = len; t < mask[i].size(); ++t)
        if (mask[i][t] != 0) fail("{}: \"attention_mask\" row {} is not right-padded (1…1 0…0)", file, i);
      b.lengths[i] = len;
    }
  }
  return b;
}

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
