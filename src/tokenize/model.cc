#include "tokenize/model.h"

#include "core/error.h"
#include "tokenize/bpe.h"
#include "tokenize/json_view.h"
#include "tokenize/wordpiece.h"

namespace tquant::tok {

namespace {

std::optional<std::string> optional_string(const JsonView& json, std::string_view key) {
  if (auto v = json.get(key)) return v->as_string();
  return std::nullopt;
}

// Merges are "left right" strings (exactly one space) or [left, right] pairs.
std::vector<std::pair<std::string, std::string>> read_merges(const JsonView& list) {
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const JsonView m = list.at(i);
    if (m.raw().is_string()) {
      const std::string s = m.as_string();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        m.fail_here(fmt::format("merge \"{}\" must be two tokens separated by one space", s));
      merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.raw().is_array() && m.raw().size() == 2) {
      merges.emplace_back(m.at(size_t{0}).as_string(), m.at(size_t{1}).as_string());
    } else {
      m.fail_here("expected a \"left right\" string or a [left, right] pair");
    }
  }
  return merges;
}

std::unique_ptr<Model> make_bpe(const JsonView& json) {
  if (auto d = json.get("dropout")) {
    if (!d->raw().is_number()) d->fail_here("expected a number or null");
    if (d->raw().get<double>() != 0.0)
      d->fail_here("dropout makes tokenization random; only null or 0 is supported");
  }
  BpeOptions o;
  o.unk_token = optional_string(json, "unk_token");
  o.continuing_subword_prefix = optional_string(json, "continuing_subword_prefix");
  o.end_of_word_suffix = optional_string(json, "end_of_word_suffix");
  o.fuse_unk = json.bool_or("fuse_unk", false);
  o.byte_fallback = json.bool_or("byte_fallback", false);
  o.ignore_merges = json.bool_or("ignore_merges", false);
  const JsonView merges = json.at("merges");
  return std::make_unique<Bpe>(Vocab::from_json(json.at("vocab")), read_merges(merges), std::move(o), merges);
}

std::unique_ptr<Model> make_wordpiece(const JsonView& json) {
  WordPieceOptions o;
  o.unk_token = json.string_or("unk_token", o.unk_token);
  o.continuing_subword_prefix = json.string_or("continuing_subword_prefix", o.continuing_subword_prefix);
  const int64_t max_chars = json.int_or("max_input_chars_per_word", 100);
  if (max_chars < 0) json.at("max_input_chars_per_word").fail_here("must not be negative");
  o.max_input_chars_per_word = static_cast<size_t>(max_chars);
  return std::make_unique<WordPiece>(Vocab::from_json(json.at("vocab")), std::move(o));
}

}  // namespace

std::unique_ptr<Model> make_model(const JsonView& json) {
  json.expect_object();
  std::string type;
  if (json.has("type")) {
    type = json.at("type").as_string();
  } else if (json.has("merges")) {
    // Files written by old versions of `tokenizers` leave the type out.
    type = "BPE";
  } else if (json.has("continuing_subword_prefix") || json.has("max_input_chars_per_word")) {
    type = "WordPiece";
  } else {
    json.fail_here("missing field \"type\" (supported: BPE, WordPiece)");
  }
  if (type == "BPE") return make_bpe(json);
  if (type == "WordPiece") return make_wordpiece(json);
  json.at("type").fail_unsupported(type, {"BPE", "WordPiece"});
}

}  // namespace tquant::tok
