#include "tokenize/decoders.h"

#include "core/error.h"
#include "tokenize/byte_level.h"
#include "tokenize/json_view.h"
#include "tokenize/regex_pattern.h"
#include "tokenize/unicode.h"

namespace tquant::tok {

namespace {

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  std::string out;
  size_t last = 0;
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, last)) {
    out.append(s, last, pos - last);
    out += to;
    last = pos + from.size();
  }
  out.append(s, last, std::string::npos);
  return out;
}

std::vector<char32_t> code_points(const std::string& s) {
  std::vector<char32_t> cps;
  for (size_t i = 0; i < s.size();) cps.push_back(unicode::next_code_point(s, i));
  return cps;
}

class ReplaceLiteral : public Decoder {
 public:
  ReplaceLiteral(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) t = replace_all(t, from_, to_);
  }

 private:
  std::string from_, to_;
};

class ReplaceRegex : public Decoder {
 public:
  ReplaceRegex(const std::string& pattern, std::string to, const JsonView& where) : regex_(pattern, where), to_(std::move(to)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) t = regex_.replace_all(t, to_);
  }

 private:
  Regex regex_;
  std::string to_;
};

// Runs of <0xXX> tokens become the text they encode, or one U+FFFD per byte if not valid UTF-8.
class ByteFallback : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    size_t n_bytes = 0;
    auto flush = [&] {
      if (n_bytes == 0) return;
      if (!unicode::find_invalid_utf8(bytes)) {
        out.push_back(bytes);
      } else {
        for (size_t i = 0; i < n_bytes; ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      bytes.clear();
      n_bytes = 0;
    };
    for (auto& t : tokens) {
      int value = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        unsigned v = 0;
        bool ok = true;
        for (int i = 3; i < 5; ++i) {
          const char c = t[i];
          v = v * 16 + (c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : (ok = false, 0));
        }
        if (ok) value = static_cast<int>(v);
      }
      if (value >= 0) {
        bytes.push_back(static_cast<char>(value));
        ++n_bytes;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

class Fuse : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character from each token.
class Strip : public Decoder {
 public:
  Strip(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      const std::vector<char32_t> cps = code_points(t);
      size_t begin = 0;
      while (begin < start_ && begin < cps.size() && cps[begin] == content_) ++begin;
      size_t end = cps.size();
      for (size_t i = 0; i < stop_ && end > begin && cps[end - 1] == content_; ++i) --end;
      std::string s;
      for (size_t i = begin; i < end; ++i) unicode::append_utf8(s, cps[i]);
      t = std::move(s);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

// All tokens are joined, each code point turned back into its byte, and the bytes read as UTF-8
// (invalid sequences become U+FFFD). A token with a code point that stands for no byte is kept as
// its own UTF-8 bytes.
class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      std::string own;
      bool mapped = true;
      for (size_t i = 0; i < t.size();) {
        const auto b = unicode_to_byte(unicode::next_code_point(t, i));
        if (!b) {
          mapped = false;
          break;
        }
        own.push_back(static_cast<char>(*b));
      }
      bytes += mapped ? own : t;
    }
    tokens.assign(1, unicode::utf8_lossy(bytes));
  }
};

class WordPieceDecoder : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i != 0) {
        if (!prefix_.empty() && t.compare(0, prefix_.size(), prefix_) == 0) {
          t.erase(0, prefix_.size());
        } else {
          t.insert(t.begin(), ' ');
        }
      }
      if (cleanup_) t = cleanup(t);
    }
  }

  static std::string cleanup(std::string s) {
    static const std::pair<const char*, const char*> kRules[] = {
        {" .", "."},   {" ?", "?"},     {" !", "!"},          {" ,", ","},   {" ' ", "'"},  {" n't", "n't"},
        {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto& [from, to] : kRules) s = replace_all(s, from, to);
    return s;
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

// Metaspace's replacement becomes a space, except in the first token when a prefix was added.
class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool drop_first) : replacement_(replacement), drop_first_(drop_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      for (size_t k = 0; k < t.size();) {
        const char32_t c = unicode::next_code_point(t, k);
        if (c == replacement_) {
          if (!(i == 0 && drop_first_)) out.push_back(' ');
        } else {
          unicode::append_utf8(out, c);
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  char32_t replacement_;
  bool drop_first_;
};

// Classic BPE's end-of-word suffix becomes a space, except after the last token.
class BpeDecoder : public Decoder {
 public:
  explicit BpeDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = replace_all(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
  }

 private:
  std::string suffix_;
};

class Sequence : public Decoder {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

}  // namespace

std::unique_ptr<Decoder> make_wordpiece_decoder(std::string prefix, bool cleanup) {
  return std::make_unique<WordPieceDecoder>(std::move(prefix), cleanup);
}

std::unique_ptr<Decoder> make_decoder(const JsonView& json) {
  if (json.is_null()) return nullptr;
  const std::string type = json.type_tag();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallback>();
  if (type == "Fuse") return std::make_unique<Fuse>();
  if (type == "WordPiece") return make_wordpiece_decoder(json.string_or("prefix", "##"), json.bool_or("cleanup", true));
  if (type == "BPEDecoder") return std::make_unique<BpeDecoder>(json.string_or("suffix", "</w>"));
  if (type == "Strip") {
    const int64_t start = json.int_or("start", 0), stop = json.int_or("stop", 0);
    if (start < 0 || stop < 0) json.fail_here("start and stop must not be negative");
    return std::make_unique<Strip>(json.at("content").as_char(), static_cast<size_t>(start), static_cast<size_t>(stop));
  }
  if (type == "Replace") {
    const JsonView pattern = json.at("pattern");
    pattern.expect_object();
    std::string content = json.at("content").as_string();
    if (pattern.has("String")) return std::make_unique<ReplaceLiteral>(pattern.at("String").as_string(), std::move(content));
    if (pattern.has("Regex")) {
      const JsonView re = pattern.at("Regex");
      return std::make_unique<ReplaceRegex>(re.as_string(), std::move(content), re);
    }
    pattern.fail_here("expected {\"String\": ...} or {\"Regex\": ...}");
  }
  if (type == "Metaspace") {
    const char32_t replacement = json.has("replacement") ? json.at("replacement").as_char() : U'\u2581';
    bool drop_first = json.bool_or("add_prefix_space", true);
    if (auto scheme = json.get("prepend_scheme")) drop_first = scheme->as_string() != "never";
    return std::make_unique<MetaspaceDecoder>(replacement, drop_first);
  }
  if (type == "Sequence") {
    const JsonView list = json.at("decoders");
    std::vector<std::unique_ptr<Decoder>> parts;
    for (size_t i = 0; i < list.size(); ++i)
      if (auto d = make_decoder(list.at(i))) parts.push_back(std::move(d));
    return std::make_unique<Sequence>(std::move(parts));
  }
  json.at("type").fail_unsupported(type, {"ByteLevel", "ByteFallback", "Fuse", "WordPiece", "BPEDecoder", "Strip", "Replace",
                                         "Metaspace", "Sequence"});
}

}  // namespace tquant::tok
