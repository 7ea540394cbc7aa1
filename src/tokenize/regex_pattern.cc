#include "tokenize/regex_pattern.h"

#include <unicode/regex.h>
#include <unicode/utext.h>

#include "core/error.h"
#include "tokenize/json_view.h"

namespace tquant::tok {

namespace {

std::string translate(const std::string& pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[i + 1];
      if (next == 's') {
        out += "\\p{White_Space}";
      } else if (next == 'S') {
        out += "\\P{White_Space}";
      } else {
        out += pattern[i];
        out += next;
      }
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

struct UTextCloser {
  void operator()(UText* t) const { utext_close(t); }
};

// Byte offsets of every match of `pattern` in `s`.
template <class Fn>
void for_each_match(const icu::RegexPattern& pattern, std::string_view s, Fn&& fn) {
  UErrorCode status = U_ZERO_ERROR;
  std::unique_ptr<UText, UTextCloser> text(
      utext_openUTF8(nullptr, s.data(), static_cast<int64_t>(s.size()), &status));
  std::unique_ptr<icu::RegexMatcher> matcher(pattern.matcher(status));
  if (U_FAILURE(status)) fail("ICU regex: cannot create a matcher: {}", u_errorName(status));
  matcher->reset(text.get());
  while (matcher->find(status) && U_SUCCESS(status)) {
    const int64_t b = matcher->start64(status);
    const int64_t e = matcher->end64(status);
    fn(static_cast<size_t>(b), static_cast<size_t>(e));
  }
  if (U_FAILURE(status)) fail("ICU regex: matching failed: {}", u_errorName(status));
}

}  // namespace

struct Regex::Compiled {
  std::unique_ptr<icu::RegexPattern> pattern;
};

Regex::Regex(const std::string& pattern, const JsonView& where) : compiled_(std::make_unique<Compiled>()) {
  UErrorCode status = U_ZERO_ERROR;
  UParseError parse_error{};
  const std::string translated = translate(pattern);
  compiled_->pattern.reset(icu::RegexPattern::compile(icu::UnicodeString::fromUTF8(translated), 0, parse_error, status));
  if (U_FAILURE(status))
    where.fail_here(fmt::format("cannot compile regex \"{}\" ({} at offset {})", pattern, u_errorName(status),
                                parse_error.offset));
}

Regex::~Regex() = default;

std::vector<Span> Regex::spans(std::string_view s) const {
  std::vector<Span> spans;
  size_t last = 0;
  for_each_match(*compiled_->pattern, s, [&](size_t b, size_t e) {
    if (last < b) spans.push_back({last, b, false});
    spans.push_back({b, e, true});
    last = e;
  });
  if (last < s.size()) spans.push_back({last, s.size(), false});
  return spans;
}

std::string Regex::replace_all(std::string_view s, std::string_view content) const {
  std::string out;
  size_t last = 0;
  for_each_match(*compiled_->pattern, s, [&](size_t b, size_t e) {
    out.append(s.substr(last, b - last));
    out.append(content);
    last = e;
  });
  out.append(s.substr(last));
  return out;
}

}  // namespace tquant::tok
