// tquant tokenize: runs a model folder's tokenizer on a text (or a sentence pair) and prints the
// ids, type ids and token strings as one JSON object; --count times a whole file instead.
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_registry.h"
#include "core/error.h"
#include "tokenize/tokenizer.h"
#include "tokenize/unicode.h"

namespace tquant::cli {
namespace {

struct Options {
  std::string model, text, file, pair, pair_file;
  bool no_special = false;
  bool count = false;
  bool has_pair = false;  // an empty --pair "" is still a pair
  int max_length = 0;
};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the text file", path);
  std::ostringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  if (auto bad = unicode::find_invalid_utf8(text)) fail("{}: not valid UTF-8 (byte {})", path, *bad);
  return text;
}

int run(const Options& o) {
  const auto tokenizer = Tokenizer::from_dir(o.model);
  const std::string text = o.file.empty() ? o.text : read_text_file(o.file);
  const bool has_pair = o.has_pair;
  const std::string pair = o.pair_file.empty() ? o.pair : read_text_file(o.pair_file);

  const auto t0 = std::chrono::steady_clock::now();
  const Encoding e = has_pair ? tokenizer->encode_pair(text, pair, !o.no_special, o.max_length)
                              : tokenizer->encode(text, !o.no_special, o.max_length);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (o.count) {
    fmt::print("{} {:.3f}\n", e.ids.size(), seconds);
    return 0;
  }
  nlohmann::ordered_json out;
  out["ids"] = e.ids;
  out["type_ids"] = e.type_ids;
  auto& tokens = out["tokens"] = nlohmann::ordered_json::array();
  for (int32_t id : e.ids) tokens.push_back(tokenizer->id_to_token(id));
  fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  return 0;
}

const bool registered = register_command(
    "tokenize", "Tokenize a text with a model folder's tokenizer and print ids as JSON", [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      app.add_option("--model", o->model, "Folder with tokenizer.json, or vocab.txt for BERT")->required();
      auto* text = app.add_option("--text", o->text, "Text to tokenize");
      auto* file = app.add_option("--file", o->file, "File whose whole content is tokenized (UTF-8)");
      auto* pair = app.add_option("--pair", o->pair, "Second sequence of a sentence pair");
      auto* pair_file = app.add_option("--pair-file", o->pair_file, "File holding the second sequence");
      app.add_flag("--no-special", o->no_special, "Do not add the post-processor's special tokens");
      app.add_option("--max-length", o->max_length, "Truncate to N tokens, special tokens included (longest first)")
          ->check(CLI::NonNegativeNumber);
      app.add_flag("--count", o->count, "Print only the number of tokens and the seconds taken");
      text->excludes(file);
      pair->excludes(pair_file);
      app.callback([o, text, file, pair, pair_file] {
        if (text->count() == 0 && file->count() == 0) throw CLI::ValidationError("give --text or --file");
        o->has_pair = pair->count() > 0 || pair_file->count() > 0;
      });
      return [o] { return run(*o); };
    });

}  // namespace
}  // namespace tquant::cli
