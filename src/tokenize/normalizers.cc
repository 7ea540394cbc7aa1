#include "tokenize/normalizers.h"

#include <vector>

#include "core/error.h"
#include "tokenize/byte_level.h"
#include "tokenize/json_view.h"
#include "tokenize/regex_pattern.h"
#include "tokenize/unicode.h"

namespace tquant::tok {

namespace {

using unicode::next_code_point;

class UnicodeForm : public Normalizer {
 public:
  explicit UnicodeForm(unicode::Form form) : form_(form) {}
  void normalize(std::string& text) const override { text = unicode::normalize(form_, text); }

 private:
  unicode::Form form_;
};

class Lowercase : public Normalizer {
 public:
  void normalize(std::string& text) const override { text = unicode::lowercase(text); }
};

// Removes Mn code points only; HF expects an NFD normalizer before it to split accents off.
class StripAccents : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      const size_t start = i;
      if (!unicode::is_mark_nonspacing(next_code_point(text, i))) out.append(text, start, i - start);
    }
    text = std::move(out);
  }
};

class Strip : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end) {
        size_t i = begin;
        if (!unicode::is_whitespace(next_code_point(text, i))) break;
        begin = i;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        size_t i = start;
        if (!unicode::is_whitespace(next_code_point(text, i))) break;
        end = start;
      }
    }
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class ReplaceLiteral : public Normalizer {
 public:
  ReplaceLiteral(std::string pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override {
    if (text.find(pattern_) == std::string::npos) return;
    std::string out;
    out.reserve(text.size() + text.size() / 4);
    size_t last = 0;
    for (size_t pos = text.find(pattern_); pos != std::string::npos; pos = text.find(pattern_, last)) {
      out.append(text, last, pos - last);
      out += content_;
      last = pos + pattern_.size();
    }
    out.append(text, last, std::string::npos);
    text = std::move(out);
  }

 private:
  std::string pattern_, content_;
};

class ReplaceRegex : public Normalizer {
 public:
  ReplaceRegex(const std::string& pattern, std::string content, const JsonView& where)
      : regex_(pattern, where), content_(std::move(content)) {}
  void normalize(std::string& text) const override { text = regex_.replace_all(text, content_); }

 private:
  Regex regex_;
  std::string content_;
};

// Only non-empty texts get the prefix, so an empty input stays empty.
class Prepend : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ByteLevelNormalizer : public Normalizer {
 public:
  void normalize(std::string& text) const override { text = bytes_to_unicode_string(text); }
};

class Sequence : public Normalizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void normalize(std::string& text) const override {
    for (const auto& p : parts_) p->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

class BertNormalizer : public Normalizer {
 public:
  explicit BertNormalizer(const BertNormalizerOptions& o) : o_(o) {}

  void normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size() + text.size() / 8);
    for (size_t i = 0; i < text.size();) {
      const size_t start = i;
      const char32_t c = next_code_point(text, i);
      const bool tab_or_newline = c == '\t' || c == '\n' || c == '\r';
      if (o_.clean_text) {
        // Control and format characters go; \t \n \r are whitespace, not controls, here.
        if (c == 0 || c == 0xFFFD || (!tab_or_newline && unicode::is_other(c))) continue;
        if (tab_or_newline || unicode::is_whitespace(c)) {
          out.push_back(' ');
          continue;
        }
      }
      if (o_.handle_chinese_chars && is_chinese_char(c)) {
        out.push_back(' ');
        out.append(text, start, i - start);
        out.push_back(' ');
        continue;
      }
      out.append(text, start, i - start);
    }
    if (o_.strip_accents) {
      std::string nfd = unicode::normalize(unicode::Form::NFD, out);
      out.clear();
      for (size_t i = 0; i < nfd.size();) {
        const size_t start = i;
        if (!unicode::is_mark_nonspacing(next_code_point(nfd, i))) out.append(nfd, start, i - start);
      }
    }
    if (o_.lowercase) out = unicode::lowercase(out);
    text = std::move(out);
  }

 private:
  BertNormalizerOptions o_;
};

// {"String": "..."} or {"Regex": "..."}: which kind, and the text.
std::pair<bool, std::string> read_pattern(const JsonView& p) {
  p.expect_object();
  if (p.has("String")) return {false, p.at("String").as_string()};
  if (p.has("Regex")) return {true, p.at("Regex").as_string()};
  p.fail_here("expected {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace

std::unique_ptr<Normalizer> make_bert_normalizer(const BertNormalizerOptions& options) {
  return std::make_unique<BertNormalizer>(options);
}

std::unique_ptr<Normalizer> make_normalizer(const JsonView& json) {
  if (json.is_null()) return nullptr;
  const std::string type = json.type_tag();
  if (type == "BertNormalizer") {
    BertNormalizerOptions o;
    o.clean_text = json.bool_or("clean_text", true);
    o.handle_chinese_chars = json.bool_or("handle_chinese_chars", true);
    o.lowercase = json.bool_or("lowercase", true);
    o.strip_accents = json.bool_or("strip_accents", o.lowercase);
    return make_bert_normalizer(o);
  }
  if (type == "NFC") return std::make_unique<UnicodeForm>(unicode::Form::NFC);
  if (type == "NFD") return std::make_unique<UnicodeForm>(unicode::Form::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeForm>(unicode::Form::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeForm>(unicode::Form::NFKD);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "Strip") return std::make_unique<Strip>(json.bool_or("strip_left", true), json.bool_or("strip_right", true));
  if (type == "Prepend") return std::make_unique<Prepend>(json.at("prepend").as_string());
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  if (type == "Replace") {
    const JsonView pattern = json.at("pattern");
    auto [is_regex, text] = read_pattern(pattern);
    std::string content = json.at("content").as_string();
    if (is_regex) return std::make_unique<ReplaceRegex>(text, std::move(content), pattern.at("Regex"));
    if (text.empty()) pattern.at("String").fail_here("empty pattern");
    return std::make_unique<ReplaceLiteral>(std::move(text), std::move(content));
  }
  if (type == "Sequence") {
    const JsonView list = json.at("normalizers");
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < list.size(); ++i)
      if (auto n = make_normalizer(list.at(i))) parts.push_back(std::move(n));
    return std::make_unique<Sequence>(std::move(parts));
  }
  json.at("type").fail_unsupported(type, {"BertNormalizer", "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "StripAccents",
                                         "Strip", "Replace", "Prepend", "ByteLevel", "Sequence"});
}

}  // namespace tquant::tok
