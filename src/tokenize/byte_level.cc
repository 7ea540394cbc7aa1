#include "tokenize/byte_level.h"

#include "tokenize/unicode.h"

namespace tquant::tok {

namespace {

// Bytes that are printable Latin-1 keep their own code point; the other 68 are numbered from
// U+0100 upwards in byte order, so that no byte maps to whitespace or a control character.
std::array<char32_t, 256> make_byte_code_points() {
  std::array<char32_t, 256> cps{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    cps[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return cps;
}

const std::array<char32_t, 256>& byte_code_points() {
  static const std::array<char32_t, 256> cps = make_byte_code_points();
  return cps;
}

enum class Class { Space, Whitespace, Letter, Number, Other };

Class classify(char32_t c) {
  if (c == ' ') return Class::Space;
  if (unicode::is_whitespace(c)) return Class::Whitespace;
  if (unicode::is_letter(c)) return Class::Letter;
  if (unicode::is_numeric(c)) return Class::Number;
  return Class::Other;
}

bool is_ws(Class k) { return k == Class::Space || k == Class::Whitespace; }

// Length in code points of the contraction ('s 't 're 've 'm 'll 'd) at cps[i], or 0.
size_t contraction(const std::vector<char32_t>& cps, size_t i) {
  if (cps[i] != '\'' || i + 1 >= cps.size()) return 0;
  const char32_t a = cps[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 < cps.size()) {
    const char32_t b = cps[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  }
  return 0;
}

}  // namespace

const std::array<std::string, 256>& byte_to_unicode() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    for (int b = 0; b < 256; ++b) t[b] = unicode::to_utf8(byte_code_points()[b]);
    return t;
  }();
  return table;
}

std::optional<unsigned char> unicode_to_byte(char32_t c) {
  if (c < 256) {
    if (byte_code_points()[c] == c) return static_cast<unsigned char>(c);
    return std::nullopt;
  }
  static const std::array<int, 68> inverse = [] {
    std::array<int, 68> inv{};
    for (int b = 0; b < 256; ++b)
      if (byte_code_points()[b] >= 256) inv[byte_code_points()[b] - 256] = b;
    return inv;
  }();
  if (c - 256 < inverse.size()) return static_cast<unsigned char>(inverse[c - 256]);
  return std::nullopt;
}

std::string bytes_to_unicode_string(std::string_view s) {
  const auto& table = byte_to_unicode();
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char b : s) out += table[b];
  return out;
}

std::vector<Span> gpt2_spans(std::string_view s) {
  std::vector<char32_t> cps;
  std::vector<size_t> offsets;  // byte offset of each code point, plus the end
  cps.reserve(s.size());
  offsets.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size();) {
    offsets.push_back(i);
    cps.push_back(unicode::next_code_point(s, i));
  }
  offsets.push_back(s.size());
  const size_t n = cps.size();
  std::vector<Class> cls(n);
  for (size_t i = 0; i < n; ++i) cls[i] = classify(cps[i]);

  std::vector<Span> spans;
  auto run_end = [&](size_t j, auto pred) {
    while (j < n && pred(cls[j])) ++j;
    return j;
  };
  size_t i = 0;
  while (i < n) {
    size_t end = 0;
    if (size_t c = contraction(cps, i)) {
      end = i + c;
    } else {
      // ` ?X+` for X = letters, numbers, other: the optional space only counts when X follows.
      const size_t body = (cls[i] == Class::Space && i + 1 < n) ? i + 1 : i;
      const Class k = cls[body];
      if (!is_ws(k)) {
        end = run_end(body, [k](Class c) { return c == k; });
      } else {
        const size_t ws_end = run_end(i, is_ws);
        // `\s+(?!\S)` gives back the last whitespace before a non-space, unless that would
        // leave nothing, in which case `\s+` takes the single whitespace.
        end = (ws_end < n && ws_end - i >= 2) ? ws_end - 1 : ws_end;
      }
    }
    spans.push_back({offsets[i], offsets[end], true});
    i = end;
  }
  return spans;
}

}  // namespace tquant::tok
