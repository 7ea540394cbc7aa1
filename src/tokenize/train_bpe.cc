#include "tokenize/train_bpe.h"

#include "core/error.h"
#include "tokenize/byte_level.h"
#include "tokenize/json_view.h"
#include "tokenize/normalizers.h"
#include "tokenize/pre_tokenizers.h"

namespace tquant::tok {
namespace {

using ordered = nlohmann::ordered_json;

ordered normalizer_json(const BpeTrainerOptions& o) {
  return o.lowercase ? ordered{{"type", "Lowercase"}} : ordered(nullptr);
}

ordered byte_level_json(bool add_prefix_space, bool trim_offsets) {
  return ordered{{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", trim_offsets}, {"use_regex", true}};
}

}  // namespace

struct BpeTrainer::Impl {
  std::unique_ptr<Normalizer> normalizer;  // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer;
};

BpeTrainer::BpeTrainer(BpeTrainerOptions options) : options_(std::move(options)), impl_(new Impl) {
  const nlohmann::json n = nlohmann::json::parse(normalizer_json(options_).dump());
  const nlohmann::json p = nlohmann::json::parse(byte_level_json(false, true).dump());
  impl_->normalizer = make_normalizer(JsonView(n, "<trainer>", "normalizer"));
  impl_->pre_tokenizer = make_pre_tokenizer(JsonView(p, "<trainer>", "pre_tokenizer"));
}

BpeTrainer::~BpeTrainer() = default;

void BpeTrainer::feed(std::string_view text) {
  std::string s(text);
  if (impl_->normalizer) impl_->normalizer->normalize(s);
  std::vector<Piece> pieces;
  pieces.push_back(Piece{std::move(s), -1, true});
  impl_->pre_tokenizer->pre_tokenize(pieces);
  for (const Piece& piece : pieces)
    if (!piece.text.empty()) ++words_[piece.text];
}

void BpeTrainer::feed_files(const std::vector<std::filesystem::path>& files) {
  for_each_training_line(files, [&](std::string_view line) { feed(line); });
}

const MergeTrainerResult& BpeTrainer::train() {
  MergeTrainerOptions m;
  m.vocab_size = options_.vocab_size;
  m.min_frequency = options_.min_frequency;
  m.special_tokens = options_.special_tokens;
  for (const std::string& c : byte_to_unicode()) m.initial_alphabet.push_back(c);
  result_ = train_merges(words_, m);
  trained_ = true;
  return result_;
}

ordered bpe_tokenizer_json(const MergeTrainerResult& result, const BpeTrainerOptions& options) {
  ordered j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  ordered added = ordered::array();
  for (size_t i = 0; i < options.special_tokens.size(); ++i)
    added.push_back(ordered{{"id", static_cast<int32_t>(i)},
                            {"content", options.special_tokens[i]},
                            {"single_word", false},
                            {"lstrip", false},
                            {"rstrip", false},
                            {"normalized", true},
                            {"special", true}});
  j["added_tokens"] = added;
  j["normalizer"] = normalizer_json(options);
  j["pre_tokenizer"] = byte_level_json(false, true);
  j["post_processor"] = byte_level_json(true, false);
  j["decoder"] = byte_level_json(true, true);
  ordered model;
  model["type"] = "BPE";
  model["dropout"] = nullptr;
  model["unk_token"] = nullptr;
  model["continuing_subword_prefix"] = nullptr;
  model["end_of_word_suffix"] = nullptr;
  model["fuse_unk"] = false;
  model["byte_fallback"] = false;
  model["ignore_merges"] = false;
  ordered v = ordered::object();
  for (size_t i = 0; i < result.vocab.size(); ++i) v[result.vocab[i]] = static_cast<int32_t>(i);
  model["vocab"] = v;
  ordered merges = ordered::array();
  for (const auto& [a, b] : result.merges) merges.push_back(ordered::array({a, b}));
  model["merges"] = merges;
  j["model"] = model;
  return j;
}

TrainedFiles BpeTrainer::files() const {
  if (!trained_) fail("BpeTrainer::files() called before train()");
  TrainedFiles out;
  out.files.emplace_back("tokenizer.json", dump_json(bpe_tokenizer_json(result_, options_)));
  ordered map = ordered::object();
  if (!options_.special_tokens.empty()) {
    const std::string& t = options_.special_tokens.front();
    map["bos_token"] = t;
    map["eos_token"] = t;
    map["unk_token"] = t;
  }
  ordered config;
  config["tokenizer_class"] = "PreTrainedTokenizerFast";
  config["add_prefix_space"] = false;
  for (const auto& [k, v] : map.items()) config[k] = v;
  out.files.emplace_back("tokenizer_config.json", dump_json(config));
  out.files.emplace_back("special_tokens_map.json", dump_json(map));
  return out;
}

}  // namespace tquant::tok
