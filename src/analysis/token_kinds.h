#pragma once
// What a token is, for attributing outliers and attention: a special token (BOS, [CLS], [SEP],
// EOS and whatever the post-processor adds), a delimiter (decodes to punctuation and/or
// whitespace only, e.g. "." "," "\n"), or ordinary text. These are the "no-op" targets of
// Bondarenko et al. §2 (METHODS.md): heads park their attention on them.
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenize/tokenizer.h"

namespace tquant::analysis {

enum class TokenKind : uint8_t { Other = 0, Special = 1, Delimiter = 2 };
inline constexpr int kTokenKinds = 3;
const char* token_kind_name(TokenKind k);  // "other", "special", "delimiter"

// The statistics hooks see only ids; this tells them each id's kind.
using TokenClassifier = std::function<TokenKind(int32_t id)>;

// Token text made visible for tables and axis labels: newline, tab and CR become \n \t \r,
// and a text of spaces only becomes "␣" per space.
std::string visible_text(const std::string& text);

// True when `text` is non-empty and every code point is White_Space or punctuation (P*).
bool is_delimiter_text(const std::string& text);

// Token kinds and display strings of one tokenizer. Kinds are worked out on first use and
// cached, so this is not thread-safe: the hooks classify a batch's ids before going parallel.
class TokenCatalog {
 public:
  // `special` lists the special ids (see special_token_ids in windows.h); -1 entries are ignored.
  TokenCatalog(const Tokenizer& tokenizer, std::vector<int32_t> special);

  TokenKind kind(int32_t id) const;
  // The id's text as the tokenizer decodes it alone (special tokens kept), valid UTF-8.
  std::string text(int32_t id) const;
  // The vocabulary entry (e.g. "▁the", "<0x0A>"), valid UTF-8.
  std::string piece(int32_t id) const;
  const std::vector<int32_t>& special_ids() const { return special_; }
  TokenClassifier classifier() const {
    return [this](int32_t id) { return kind(id); };
  }

 private:
  const Tokenizer& tokenizer_;
  std::vector<int32_t> special_;
  mutable std::unordered_map<int32_t, TokenKind> kinds_;
};

}  // namespace tquant::analysis
