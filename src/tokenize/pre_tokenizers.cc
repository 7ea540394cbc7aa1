#include "tokenize/pre_tokenizers.h"

#include "core/error.h"
#include "tokenize/byte_level.h"
#include "tokenize/json_view.h"
#include "tokenize/regex_pattern.h"
#include "tokenize/unicode.h"

namespace tquant::tok {

namespace {

// Rust's is_ascii_punctuation counts symbols such as $ + < = > ^ ` | ~ as well.
bool is_bert_punctuation(char32_t c) {
  if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                       (c >= 0x7B && c <= 0x7E);
  return unicode::is_punctuation(c);
}

class ByteLevel : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for_each_text_piece(pieces, [&](Piece&& p, std::vector<Piece>& out) {
      if (add_prefix_space_ && (p.text.empty() || p.text[0] != ' ')) p.text.insert(p.text.begin(), ' ');
      const size_t first = out.size();
      if (use_regex_) {
        split_piece(p, gpt2_spans(p.text), SplitBehavior::Isolated, out);
      } else {
        out.push_back(std::move(p));
      }
      for (size_t i = first; i < out.size(); ++i) out[i].text = bytes_to_unicode_string(out[i].text);
    });
  }

 private:
  bool add_prefix_space_, use_regex_;
};

// `\w+|[^\w\s]+`, keeping the matches and dropping the whitespace between them.
class Whitespace : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for_each_text_piece(pieces, [](Piece&& p, std::vector<Piece>& out) {
      std::vector<Span> spans;
      const std::string& s = p.text;
      size_t i = 0;
      while (i < s.size()) {
        size_t j = i;
        const char32_t c = unicode::next_code_point(s, j);
        if (unicode::is_whitespace(c)) {
          spans.push_back({i, j, false});
          i = j;
          continue;
        }
        const bool word = unicode::is_word_char(c);
        size_t end = j;
        while (end < s.size()) {
          size_t k = end;
          const char32_t d = unicode::next_code_point(s, k);
          if (unicode::is_whitespace(d) || unicode::is_word_char(d) != word) break;
          end = k;
        }
        spans.push_back({i, end, true});
        i = end;
      }
      invert_spans(spans);
      split_piece(p, spans, SplitBehavior::Removed, out);
    });
  }
};

class CharSplit : public PreTokenizer {
 public:
  CharSplit(std::function<bool(char32_t)> pred, SplitBehavior behavior) : pred_(std::move(pred)), behavior_(behavior) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for_each_text_piece(pieces, [&](Piece&& p, std::vector<Piece>& out) {
      split_piece(p, char_spans(p.text, pred_), behavior_, out);
    });
  }

 private:
  std::function<bool(char32_t)> pred_;
  SplitBehavior behavior_;
};

enum class PrependScheme { Always, First, Never };

class Metaspace : public PreTokenizer {
 public:
  Metaspace(char32_t replacement, PrependScheme scheme, bool split)
      : replacement_(unicode::to_utf8(replacement)), code_point_(replacement), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for_each_text_piece(pieces, [&](Piece&& p, std::vector<Piece>& out) {
      std::string text;
      text.reserve(p.text.size() + 8);
      for (char ch : p.text) {
        if (ch == ' ') {
          text += replacement_;
        } else {
          text.push_back(ch);
        }
      }
      const bool needs_prefix = text.compare(0, replacement_.size(), replacement_) != 0;
      if (needs_prefix && (scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && p.at_origin)))
        text.insert(0, replacement_);
      p.text = std::move(text);
      if (split_) {
        const char32_t r = code_point_;
        split_piece(p, char_spans(p.text, [r](char32_t c) { return c == r; }), SplitBehavior::MergedWithNext, out);
      } else {
        out.push_back(std::move(p));
      }
    });
  }

 private:
  std::string replacement_;
  char32_t code_point_;
  PrependScheme scheme_;
  bool split_;
};

class SplitLiteral : public PreTokenizer {
 public:
  SplitLiteral(std::string literal, SplitBehavior behavior, bool invert)
      : literal_(std::move(literal)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for_each_text_piece(pieces, [&](Piece&& p, std::vector<Piece>& out) {
      auto spans = literal_spans(p.text, literal_);
      if (invert_) invert_spans(spans);
      split_piece(p, spans, behavior_, out);
    });
  }

 private:
  std::string literal_;
  SplitBehavior behavior_;
  bool invert_;
};

class SplitRegex : public PreTokenizer {
 public:
  SplitRegex(const std::string& pattern, const JsonView& where, SplitBehavior behavior, bool invert)
      : regex_(pattern, where), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for_each_text_piece(pieces, [&](Piece&& p, std::vector<Piece>& out) {
      auto spans = regex_.spans(p.text);
      if (invert_) invert_spans(spans);
      split_piece(p, spans, behavior_, out);
    });
  }

 private:
  Regex regex_;
  SplitBehavior behavior_;
  bool invert_;
};

class Sequence : public PreTokenizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& p : parts_) p->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

class BertPreTokenizer : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    whitespace_.pre_tokenize(pieces);
    punctuation_.pre_tokenize(pieces);
  }

 private:
  CharSplit whitespace_{unicode::is_whitespace, SplitBehavior::Removed};
  CharSplit punctuation_{is_bert_punctuation, SplitBehavior::Isolated};
};

SplitBehavior read_behavior(const JsonView& v) {
  const std::string s = v.as_string();
  if (s == "Removed") return SplitBehavior::Removed;
  if (s == "Isolated") return SplitBehavior::Isolated;
  if (s == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (s == "Contiguous") return SplitBehavior::Contiguous;
  v.fail_unsupported(s, {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"});
}

std::unique_ptr<PreTokenizer> make_metaspace(const JsonView& json) {
  const char32_t replacement = json.has("replacement") ? json.at("replacement").as_char() : U'\u2581';
  PrependScheme scheme = PrependScheme::Always;
  if (auto s = json.get("prepend_scheme")) {
    const std::string v = s->as_string();
    if (v == "always") {
      scheme = PrependScheme::Always;
    } else if (v == "first") {
      scheme = PrependScheme::First;
    } else if (v == "never") {
      scheme = PrependScheme::Never;
    } else {
      s->fail_unsupported(v, {"always", "first", "never"});
    }
    if (!json.bool_or("add_prefix_space", true) && scheme != PrependScheme::Never)
      json.at("add_prefix_space").fail_here("false contradicts prepend_scheme \"" + v + "\"");
  } else if (!json.bool_or("add_prefix_space", true)) {
    scheme = PrependScheme::Never;
  }
  return std::make_unique<Metaspace>(replacement, scheme, json.bool_or("split", true));
}

}  // namespace

std::unique_ptr<PreTokenizer> make_bert_pre_tokenizer() { return std::make_unique<BertPreTokenizer>(); }

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonView& json) {
  if (json.is_null()) return nullptr;
  const std::string type = json.type_tag();
  if (type == "ByteLevel")
    return std::make_unique<ByteLevel>(json.bool_or("add_prefix_space", true), json.bool_or("use_regex", true));
  if (type == "BertPreTokenizer") return make_bert_pre_tokenizer();
  if (type == "Whitespace") return std::make_unique<Whitespace>();
  if (type == "WhitespaceSplit") return std::make_unique<CharSplit>(unicode::is_whitespace, SplitBehavior::Removed);
  if (type == "Metaspace") return make_metaspace(json);
  if (type == "Punctuation") {
    const SplitBehavior b = json.has("behavior") ? read_behavior(json.at("behavior")) : SplitBehavior::Isolated;
    return std::make_unique<CharSplit>(is_bert_punctuation, b);
  }
  if (type == "Digits") {
    const bool individual = json.bool_or("individual_digits", false);
    return std::make_unique<CharSplit>(unicode::is_numeric,
                                       individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous);
  }
  if (type == "CharDelimiterSplit") {
    const char32_t d = json.at("delimiter").as_char();
    return std::make_unique<CharSplit>([d](char32_t c) { return c == d; }, SplitBehavior::Removed);
  }
  if (type == "Split") {
    const JsonView pattern = json.at("pattern");
    pattern.expect_object();
    const SplitBehavior behavior = read_behavior(json.at("behavior"));
    const bool invert = json.bool_or("invert", false);
    if (pattern.has("String")) return std::make_unique<SplitLiteral>(pattern.at("String").as_string(), behavior, invert);
    if (pattern.has("Regex")) {
      const JsonView re = pattern.at("Regex");
      return std::make_unique<SplitRegex>(re.as_string(), re, behavior, invert);
    }
    pattern.fail_here("expected {\"String\": ...} or {\"Regex\": ...}");
  }
  if (type == "Sequence") {
    const JsonView list = json.at("pretokenizers");
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < list.size(); ++i)
      if (auto p = make_pre_tokenizer(list.at(i))) parts.push_back(std::move(p));
    return std::make_unique<Sequence>(std::move(parts));
  }
  json.at("type").fail_unsupported(type, {"ByteLevel", "BertPreTokenizer", "Whitespace", "WhitespaceSplit", "Metaspace",
                                         "Punctuation", "Digits", "CharDelimiterSplit", "Split", "Sequence"});
}

}  // namespace tquant::tok
