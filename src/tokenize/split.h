#pragma once
// The pieces a text is cut into before the model sees it, and HF's five ways of cutting a piece
// around the matches of a pattern (SplitDelimiterBehavior).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace tquant::tok {

struct Piece {
  std::string text;
  // >= 0: an added token already recognized; the model never sees it.
  int32_t added_id = -1;
  // Starts at byte 0 of the original input (Metaspace's prepend_scheme "first" asks this).
  bool at_origin = false;
};

// [begin, end) byte range of a piece, and whether it is a match of the pattern.
struct Span {
  size_t begin;
  size_t end;
  bool is_match;
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// Covers the whole of `s` with alternating non-match / match spans. Every code point that
// satisfies `pred` is a match of its own, as for HF's `Fn(char) -> bool` patterns.
std::vector<Span> char_spans(std::string_view s, const std::function<bool(char32_t)>& pred);
// Same for the non-overlapping occurrences of a literal string (empty literal: no matches).
std::vector<Span> literal_spans(std::string_view s, std::string_view literal);
// Turns matches into non-matches and back (HF's Invert pattern).
void invert_spans(std::vector<Span>& spans);

// Appends the non-empty sub-pieces of `piece` to `out`, grouped by `behavior`.
void split_piece(const Piece& piece, const std::vector<Span>& spans, SplitBehavior behavior,
                 std::vector<Piece>& out);

// Runs `fn` on every piece that is not an added token, replacing it by what `fn` appends;
// added tokens pass through in place.
void for_each_text_piece(std::vector<Piece>& pieces,
                         const std::function<void(Piece&&, std::vector<Piece>&)>& fn);

}  // namespace tquant::tok
