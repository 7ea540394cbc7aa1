#include "tokenize/train_wordpiece.h"

#include <algorithm>

#include "core/error.h"
#include "tokenize/json_view.h"
#include "tokenize/normalizers.h"
#include "tokenize/pre_tokenizers.h"

namespace tquant::tok {
namespace {

using ordered = nlohmann::ordered_json;

ordered normalizer_json(const WordPieceTrainerOptions& o) {
  return ordered{{"type", "BertNormalizer"},
                 {"clean_text", true},
                 {"handle_chinese_chars", true},
                 {"strip_accents", o.lowercase},
                 {"lowercase", o.lowercase}};
}

ordered pre_tokenizer_json() { return ordered{{"type", "BertPreTokenizer"}}; }

const std::string kUnk = "[UNK]", kCls = "[CLS]", kSep = "[SEP]";

void check_specials(const WordPieceTrainerOptions& o) {
  for (const std::string& t : {kUnk, kCls, kSep})
    if (std::find(o.special_tokens.begin(), o.special_tokens.end(), t) == o.special_tokens.end())
      fail("WordPiece training needs the special token {}", t);
}

}  // namespace

struct WordPieceTrainer::Impl {
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
};

WordPieceTrainer::WordPieceTrainer(WordPieceTrainerOptions options) : options_(std::move(options)), impl_(new Impl) {
  check_specials(options_);
  // The same JSON that goes into tokenizer.json builds the pipeline, so training sees words
  // exactly as the loaded tokenizer will.
  const nlohmann::json n = nlohmann::json::parse(normalizer_json(options_).dump());
  const nlohmann::json p = nlohmann::json::parse(pre_tokenizer_json().dump());
  impl_->normalizer = make_normalizer(JsonView(n, "<trainer>", "normalizer"));
  impl_->pre_tokenizer = make_pre_tokenizer(JsonView(p, "<trainer>", "pre_tokenizer"));
}

WordPieceTrainer::~WordPieceTrainer() = default;

void WordPieceTrainer::feed(std::string_view text) {
  std::string s(text);
  impl_->normalizer->normalize(s);
  std::vector<Piece> pieces;
  pieces.push_back(Piece{std::move(s), -1, true});
  impl_->pre_tokenizer->pre_tokenize(pieces);
  for (const Piece& piece : pieces)
    if (!piece.text.empty()) ++words_[piece.text];
}

void WordPieceTrainer::feed_files(const std::vector<std::filesystem::path>& files) {
  for_each_training_line(files, [&](std::string_view line) { feed(line); });
}

const MergeTrainerResult& WordPieceTrainer::train() {
  MergeTrainerOptions m;
  m.vocab_size = options_.vocab_size;
  m.min_frequency = options_.min_frequency;
  m.special_tokens = options_.special_tokens;
  m.continuing_subword_prefix = "##";
  result_ = train_merges(words_, m);
  trained_ = true;
  return result_;
}

ordered wordpiece_tokenizer_json(const std::vector<std::string>& vocab, const WordPieceTrainerOptions& options) {
  check_specials(options);
  auto id_of = [&](const std::string& t) {
    return static_cast<int32_t>(std::find(vocab.begin(), vocab.end(), t) - vocab.begin());
  };
  ordered j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  ordered added = ordered::array();
  for (const std::string& s : options.special_tokens)
    added.push_back(ordered{{"id", id_of(s)},
                            {"content", s},
                            {"single_word", false},
                            {"lstrip", false},
                            {"rstrip", false},
                            {"normalized", false},
                            {"special", true}});
  j["added_tokens"] = added;
  j["normalizer"] = normalizer_json(options);
  j["pre_tokenizer"] = pre_tokenizer_json();
  auto special = [](const std::string& t, int type) { return ordered{{"SpecialToken", {{"id", t}, {"type_id", type}}}}; };
  auto sequence = [](const char* id, int type) { return ordered{{"Sequence", {{"id", id}, {"type_id", type}}}}; };
  ordered post;
  post["type"] = "TemplateProcessing";
  post["single"] = ordered::array({special(kCls, 0), sequence("A", 0), special(kSep, 0)});
  post["pair"] = ordered::array({special(kCls, 0), sequence("A", 0), special(kSep, 0), sequence("B", 1), special(kSep, 1)});
  post["special_tokens"] = ordered{
      {kCls, {{"id", kCls}, {"ids", ordered::array({id_of(kCls)})}, {"tokens", ordered::array({kCls})}}},
      {kSep, {{"id", kSep}, {"ids", ordered::array({id_of(kSep)})}, {"tokens", ordered::array({kSep})}}},
  };
  j["post_processor"] = post;
  j["decoder"] = ordered{{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}};
  ordered model;
  model["type"] = "WordPiece";
  model["unk_token"] = kUnk;
  model["continuing_subword_prefix"] = "##";
  model["max_input_chars_per_word"] = 100;
  ordered v = ordered::object();
  for (size_t i = 0; i < vocab.size(); ++i) v[vocab[i]] = static_cast<int32_t>(i);
  model["vocab"] = v;
  j["model"] = model;
  return j;
}

TrainedFiles WordPieceTrainer::files() const {
  if (!trained_) fail("WordPieceTrainer::files() called before train()");
  TrainedFiles out;
  out.files.emplace_back("tokenizer.json", dump_json(wordpiece_tokenizer_json(result_.vocab, options_)));
  ordered map;
  const std::pair<const char*, const char*> roles[] = {
      {"unk_token", "[UNK]"}, {"sep_token", "[SEP]"}, {"pad_token", "[PAD]"}, {"cls_token", "[CLS]"}, {"mask_token", "[MASK]"}};
  for (const auto& [role, token] : roles)
    if (std::find(options_.special_tokens.begin(), options_.special_tokens.end(), token) != options_.special_tokens.end())
      map[role] = token;
  ordered config;
  config["tokenizer_class"] = "BertTokenizerFast";
  config["do_lower_case"] = options_.lowercase;
  config["strip_accents"] = options_.lowercase;
  for (const auto& [k, v] : map.items()) config[k] = v;
  out.files.emplace_back("tokenizer_config.json", dump_json(config));
  out.files.emplace_back("special_tokens_map.json", dump_json(map));
  return out;
}

}  // namespace tquant::tok
