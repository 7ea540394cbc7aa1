#pragma once
// `{"Regex": ...}` patterns of Split pre-tokenizers and Replace normalizers/decoders. HF compiles
// them with Oniguruma; ICU's engine accepts the same syntax for everything tokenizer files use
// (\p{..}, lookahead, possessive and lazy quantifiers, (?i:..)), except that ICU's \s omits
// U+000B and U+0085, so \s and \S are rewritten to the White_Space property that Oniguruma uses.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenize/split.h"

namespace tquant::tok {

class JsonView;

class Regex {
 public:
  // `where` names the JSON field for a compile error.
  Regex(const std::string& pattern, const JsonView& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Match / non-match spans covering `s`, like HF's Pattern impl for regexes.
  std::vector<Span> spans(std::string_view s) const;
  std::string replace_all(std::string_view s, std::string_view content) const;

 private:
  struct Compiled;  // ICU's pattern; ICU's namespace cannot be forward-declared
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace tquant::tok
