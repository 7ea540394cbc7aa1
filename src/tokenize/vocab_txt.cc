// BERT folders with only vocab.txt: the tokenizer transformers' BertTokenizerFast converts them
// to (BertNormalizer, BertPreTokenizer, WordPiece "##" with 100 max chars, the template
// "[CLS] $A [SEP] $B:1 [SEP]:1", a WordPiece decoder, and the five special tokens as
// non-normalized added tokens). Also Tokenizer::from_dir, which picks the format.
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "export/gguf_reader.h"
#include "export/gguf_vocab.h"
#include "tokenize/json_view.h"
#include "tokenize/pipeline.h"
#include "tokenize/special_ids.h"
#include "tokenize/tokenizer.h"
#include "tokenize/unicode.h"
#include "tokenize/wordpiece.h"

namespace tquant {

namespace {

struct BertOptions {
  bool lowercase = true;
  std::optional<bool> strip_accents;  // unset: same as lowercase
  bool tokenize_chinese_chars = true;
  tok::SpecialTokenNames names;
};

std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("{}: cannot open file", file.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// One token per line, id = line number; \n, \r\n and \r all end a line, as Python's text mode reads it.
tok::Vocab read_vocab_txt(const std::filesystem::path& file) {
  const std::string text = read_file(file);
  if (auto bad = unicode::find_invalid_utf8(text)) fail("{}: not valid UTF-8 (byte {})", file.string(), *bad);
  tok::Vocab vocab;
  int32_t id = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find_first_of("\r\n", start);
    if (end == std::string::npos) end = text.size();
    vocab.add(text.substr(start, end - start), id++);
    if (end < text.size() && text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n') ++end;
    start = end + 1;
  }
  if (vocab.size() == 0) fail("{}: empty vocabulary", file.string());
  return vocab;
}

std::unique_ptr<Tokenizer> build_bert(const std::filesystem::path& vocab_file, const BertOptions& o) {
  tok::Vocab vocab = read_vocab_txt(vocab_file);
  const std::string unk = o.names.unk.value_or("[UNK]"), sep = o.names.sep.value_or("[SEP]"),
                    pad = o.names.pad.value_or("[PAD]"), cls = o.names.cls.value_or("[CLS]"),
                    mask = o.names.mask.value_or("[MASK]");
  const auto cls_id = vocab.find(cls), sep_id = vocab.find(sep);
  if (!cls_id) fail("{}: no line holds the classifier token \"{}\"", vocab_file.string(), cls);
  if (!sep_id) fail("{}: no line holds the separator token \"{}\"", vocab_file.string(), sep);

  tok::Components c;
  tok::WordPieceOptions wp;
  wp.unk_token = unk;
  c.model = std::make_unique<tok::WordPiece>(std::move(vocab), wp);
  tok::BertNormalizerOptions n;
  n.clean_text = true;
  n.handle_chinese_chars = o.tokenize_chinese_chars;
  n.lowercase = o.lowercase;
  n.strip_accents = o.strip_accents.value_or(o.lowercase);
  c.normalizer = tok::make_bert_normalizer(n);
  c.pre_tokenizer = tok::make_bert_pre_tokenizer();
  c.post_processor = tok::make_bert_template(*cls_id, *sep_id);
  c.decoder = tok::make_wordpiece_decoder("##", true);
  // transformers adds them in SPECIAL_TOKENS_ATTRIBUTES order.
  for (const std::string& t : {unk, sep, pad, cls, mask}) {
    tok::AddedToken a;
    a.content = t;
    a.normalized = false;
    a.special = true;
    c.added_tokens.push_back(std::move(a));
  }
  auto pipeline = std::make_unique<tok::Pipeline>(std::move(c));
  tok::SpecialTokenNames names = o.names;
  names.unk = unk;
  names.cls = cls;
  names.sep = sep;
  names.pad = pad;
  pipeline->set_special_ids(tok::resolve_special_ids(*pipeline, names));
  return pipeline;
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_vocab_txt(const std::filesystem::path& file, bool lowercase) {
  BertOptions o;
  o.lowercase = lowercase;
  return build_bert(file, o);
}

std::unique_ptr<Tokenizer> Tokenizer::from_dir(const std::filesystem::path& dir) {
  if (gguf::is_gguf_path(dir)) return gguf::load_gguf_tokenizer(dir);  // the tokenizer a GGUF file embeds
  if (std::filesystem::exists(dir / "tokenizer.json")) return from_tokenizer_json(dir / "tokenizer.json");
  if (!std::filesystem::exists(dir / "vocab.txt"))
    fail("{}: no tokenizer.json or vocab.txt (the tokenizer formats tquant reads)", dir.string());
  const std::filesystem::path config_file = dir / "tokenizer_config.json";
  BertOptions o;
  o.names = tok::read_special_token_names(config_file);
  if (std::filesystem::exists(config_file)) {
    const nlohmann::json json = tok::parse_json_file(config_file.string());
    const tok::JsonView config(json, config_file.string(), "");
    o.lowercase = config.bool_or("do_lower_case", true);
    if (config.has("strip_accents")) o.strip_accents = config.at("strip_accents").as_bool();
    o.tokenize_chinese_chars = config.bool_or("tokenize_chinese_chars", true);
  }
  return build_bert(dir / "vocab.txt", o);
}

}  // namespace tquant
