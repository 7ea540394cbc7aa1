#include "analysis/token_kinds.h"

#include <algorithm>

#include "tokenize/unicode.h"

namespace tquant::analysis {

const char* token_kind_name(TokenKind k) {
  switch (k) {
    case TokenKind::Special: return "special";
    case TokenKind::Delimiter: return "delimiter";
    case TokenKind::Other: break;
  }
  return "other";
}

bool is_delimiter_text(const std::string& text) {
  if (text.empty()) return false;
  size_t i = 0;
  while (i < text.size()) {
    const char32_t c = unicode::next_code_point(text, i);
    if (!unicode::is_whitespace(c) && !unicode::is_punctuation(c)) return false;
  }
  return true;
}

TokenCatalog::TokenCatalog(const Tokenizer& tokenizer, std::vector<int32_t> special) : tokenizer_(tokenizer) {
  for (int32_t id : special)
    if (id >= 0 && std::find(special_.begin(), special_.end(), id) == special_.end()) special_.push_back(id);
  std::sort(special_.begin(), special_.end());
}

TokenKind TokenCatalog::kind(int32_t id) const {
  if (auto it = kinds_.find(id); it != kinds_.end()) return it->second;
  TokenKind k = TokenKind::Other;
  if (std::binary_search(special_.begin(), special_.end(), id)) {
    k = TokenKind::Special;
  } else {
    const std::string t = tokenizer_.decode({id}, false);
    // A non-special token that decodes to nothing is a bare space marker ("▁", "Ġ") that the
    // decoder strips at the start of a text: whitespace, so a delimiter.
    if (t.empty() || is_delimiter_text(unicode::utf8_lossy(t))) k = TokenKind::Delimiter;
  }
  kinds_.emplace(id, k);
  return k;
}

std::string TokenCatalog::text(int32_t id) const { return unicode::utf8_lossy(tokenizer_.decode({id}, false)); }

std::string TokenCatalog::piece(int32_t id) const { return unicode::utf8_lossy(tokenizer_.id_to_token(id)); }

std::string visible_text(const std::string& text) {
  if (!text.empty() && text.find_first_not_of(' ') == std::string::npos) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) out += "␣";
    return out;
  }
  std::string out;
  for (char c : text) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\r')
      out += "\\r";
    else
      out += c;
  }
  return out;
}

}  // namespace tquant::analysis
