#pragma once
// UTF-8 walking and the Unicode character classes that Hugging Face `tokenizers` (Rust) uses.
// Each predicate names the Rust function or regex class it stands in for, because "whitespace"
// or "punctuation" means something slightly different in each of them, and ids depend on it.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tquant::unicode {

// Byte length of the UTF-8 sequence that starts with `lead` (1 for stray continuation bytes,
// which valid input never has).
inline size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// Decodes the code point at s[i] (input already validated) and advances i past it.
inline char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  const size_t n = utf8_length(b0);
  if (n == 1 || i + n > s.size()) {
    ++i;
    return b0;
  }
  char32_t c = n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (size_t k = 1; k < n; ++k) c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return c;
}

void append_utf8(std::string& out, char32_t c);
std::string to_utf8(char32_t c);

// Byte offset of the first invalid UTF-8 sequence, or nullopt when `s` is valid.
std::optional<size_t> find_invalid_utf8(std::string_view s);

// Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes U+FFFD.
std::string utf8_lossy(std::string_view bytes);

// Rust char::is_whitespace, regex `\s`, Oniguruma `\s`: the White_Space property.
bool is_whitespace(char32_t c);
// General category L* (regex `\p{L}`).
bool is_letter(char32_t c);
// General category N* (regex `\p{N}`; Rust char::is_numeric).
bool is_numeric(char32_t c);
// Rust char::is_alphanumeric: Alphabetic property or N*.
bool is_alphanumeric(char32_t c);
// Rust regex `\w`: Alphabetic, M*, Nd, Pc, Join_Control.
bool is_word_char(char32_t c);
// General category P* (unicode_categories' is_punctuation).
bool is_punctuation(char32_t c);
// General category C* (unicode_categories' is_other: Cc, Cf, Cs, Co, Cn).
bool is_other(char32_t c);
// General category Mn.
bool is_mark_nonspacing(char32_t c);

enum class Form { NFC, NFD, NFKC, NFKD };
std::string normalize(Form form, std::string_view s);

// Rust char::to_lowercase applied to each code point on its own: full case mapping without
// context, so a final capital sigma becomes σ, not ς (unlike ICU's and Python's string lowering).
void append_lowercase(std::string& out, char32_t c);
std::string lowercase(std::string_view s);

}  // namespace tquant::unicode
