#pragma once
// GPT-2's byte-level scheme: every byte is shown as a printable code point (bytes_to_unicode),
// and text is first cut with GPT-2's regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// which is matched by hand here: it is on the hot path of every byte-level tokenizer.
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenize/split.h"

namespace tquant::tok {

// UTF-8 of the code point that stands for each byte.
const std::array<std::string, 256>& byte_to_unicode();
// Inverse of byte_to_unicode() for one code point; nullopt if it stands for no byte.
std::optional<unsigned char> unicode_to_byte(char32_t c);

// Rewrites every byte of `s` as its code point.
std::string bytes_to_unicode_string(std::string_view s);

// Spans of GPT-2's regex over `s`; they cover all of `s` (every code point matches some branch).
std::vector<Span> gpt2_spans(std::string_view s);

}  // namespace tquant::tok
