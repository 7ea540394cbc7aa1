#include "tokenize/wordpiece.h"

#include "core/error.h"
#include "tokenize/unicode.h"

namespace tquant::tok {

WordPiece::WordPiece(Vocab vocab, WordPieceOptions options) : vocab_(std::move(vocab)), options_(std::move(options)) {}

int32_t WordPiece::unk_id() const {
  const auto id = vocab_.find(options_.unk_token);
  if (!id) fail("WordPiece model: unk_token \"{}\" is not in the vocabulary", options_.unk_token);
  return *id;
}

void WordPiece::tokenize_uncached(std::string_view word, std::vector<int32_t>& out) const {
  size_t chars = 0;
  for (size_t i = 0; i < word.size(); ++chars) i += unicode::utf8_length(static_cast<unsigned char>(word[i]));
  if (chars > options_.max_input_chars_per_word) {
    out.push_back(unk_id());
    return;
  }
  const size_t first = out.size();
  std::string candidate;
  size_t start = 0;
  while (start < word.size()) {
    size_t end = word.size();
    std::optional<int32_t> found;
    while (start < end) {
      const std::string_view part = word.substr(start, end - start);
      if (start > 0) {
        candidate = options_.continuing_subword_prefix;
        candidate += part;
        found = vocab_.find(candidate);
      } else {
        found = vocab_.find(part);
      }
      if (found) break;
      // Step back one whole code point.
      --end;
      while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;
    }
    if (!found) {
      out.resize(first);
      out.push_back(unk_id());
      return;
    }
    out.push_back(*found);
    start = end;
  }
}

void WordPiece::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (cache_.lookup(word, out)) return;
  const size_t first = out.size();
  tokenize_uncached(word, out);
  cache_.store(word, out.data() + first, out.size() - first);
}

}  // namespace tquant::tok
