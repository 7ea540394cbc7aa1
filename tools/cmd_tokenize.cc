// tquant tokenize: runs a model folder's tokenizer on a text (or a sentence pair) and prints the
// ids, type ids and token strings as one JSON object; --count times a whole file instead, and
// --batch answers many requests (JSON Lines) with one tokenizer load.
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/text_file.h"
#include "cli_registry.h"
#include "core/error.h"
#include "tokenize/tokenizer.h"
#include "tokenize/unicode.h"

namespace tquant::cli {
namespace {

struct Options {
  std::string model, text, file, pair, pair_file, batch;
  bool no_special = false;
  bool count = false;
  bool has_pair = false;  // an empty --pair "" is still a pair
  int max_length = 0;
};

std::string read_utf8_file(const std::string& path) {
  std::string text = read_text_file(path, "text file");
  if (auto bad = unicode::find_invalid_utf8(text)) fail("{}: not valid UTF-8 (byte {})", path, *bad);
  return text;
}

nlohmann::ordered_json encoding_json(const Tokenizer& tokenizer, const Encoding& e) {
  nlohmann::ordered_json out;
  out["ids"] = e.ids;
  out["type_ids"] = e.type_ids;
  auto& tokens = out["tokens"] = nlohmann::ordered_json::array();
  for (int32_t id : e.ids) tokens.push_back(tokenizer.id_to_token(id));
  return out;
}

std::string dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// Each input line: {"text": STR, "pair": STR (optional), "special": BOOL (default true),
// "max_length": N (default 0)}. Each output line: the encoding, or {"error": MESSAGE} when the
// tokenizer refuses that request (the others still run).
int run_batch(const Tokenizer& tokenizer, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the batch file", path);
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    nlohmann::json request;
    try {
      request = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      fail("{}: line {}: malformed JSON: {}", path, n, e.what());
    }
    if (!request.is_object() || !request.contains("text") || !request["text"].is_string())
      fail("{}: line {}: expected an object with a string field \"text\"", path, n);
    const std::string text = request["text"];
    const bool special = request.value("special", true);
    const int max_length = request.value("max_length", 0);
    try {
      const Encoding e = request.contains("pair")
                             ? tokenizer.encode_pair(text, request["pair"].get<std::string>(), special, max_length)
                             : tokenizer.encode(text, special, max_length);
      fmt::print("{}\n", dump(encoding_json(tokenizer, e)));
    } catch (const Error& e) {
      fmt::print("{}\n", dump(nlohmann::ordered_json{{"error", e.what()}}));
    }
  }
  return 0;
}

int run(const Options& o) {
  const auto tokenizer = Tokenizer::from_dir(o.model);
  if (!o.batch.empty()) return run_batch(*tokenizer, o.batch);
  const std::string text = o.file.empty() ? o.text : read_utf8_file(o.file);
  const bool has_pair = o.has_pair;
  const std::string pair = o.pair_file.empty() ? o.pair : read_utf8_file(o.pair_file);

  const auto t0 = std::chrono::steady_clock::now();
  const Encoding e = has_pair ? tokenizer->encode_pair(text, pair, !o.no_special, o.max_length)
                              : tokenizer->encode(text, !o.no_special, o.max_length);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (o.count) {
    fmt::print("{} {:.3f}\n", e.ids.size(), seconds);
    return 0;
  }
  fmt::print("{}\n", dump(encoding_json(*tokenizer, e)));
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
      auto* batch = app.add_option("--batch", o->batch,
                                   "JSON Lines of {\"text\", \"pair\", \"special\", \"max_length\"}; one result per line");
      text->excludes(file);
      pair->excludes(pair_file);
      batch->excludes(text)->excludes(file)->excludes(pair)->excludes(pair_file);
      app.callback([o, text, file, pair, pair_file, batch] {
        if (text->count() == 0 && file->count() == 0 && batch->count() == 0)
          throw CLI::ValidationError("give --text, --file or --batch");
        o->has_pair = pair->count() > 0 || pair_file->count() > 0;
      });
      return [o] { return run(*o); };
    });

}  // namespace
}  // namespace tquant::cli
