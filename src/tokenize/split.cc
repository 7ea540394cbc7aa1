#include "tokenize/split.h"

#include <algorithm>

#include "tokenize/unicode.h"

namespace tquant::tok {

std::vector<Span> char_spans(std::string_view s, const std::function<bool(char32_t)>& pred) {
  std::vector<Span> spans;
  size_t last = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    const char32_t c = unicode::next_code_point(s, i);
    if (!pred(c)) continue;
    if (last < start) spans.push_back({last, start, false});
    spans.push_back({start, i, true});
    last = i;
  }
  if (last < s.size()) spans.push_back({last, s.size(), false});
  return spans;
}

std::vector<Span> literal_spans(std::string_view s, std::string_view literal) {
  std::vector<Span> spans;
  size_t last = 0;
  if (!literal.empty()) {
    for (size_t pos = s.find(literal); pos != std::string_view::npos; pos = s.find(literal, last)) {
      if (last < pos) spans.push_back({last, pos, false});
      spans.push_back({pos, pos + literal.size(), true});
      last = pos + literal.size();
    }
  }
  if (last < s.size()) spans.push_back({last, s.size(), false});
  return spans;
}

void invert_spans(std::vector<Span>& spans) {
  for (auto& s : spans) s.is_match = !s.is_match;
}

namespace {

// Pairs of (span, keep) after grouping, following HF's NormalizedString::split.
std::vector<Span> group(const std::vector<Span>& spans, SplitBehavior behavior) {
  std::vector<Span> out;  // is_match here means "drop this span"
  switch (behavior) {
    case SplitBehavior::Removed:
      return spans;
    case SplitBehavior::Isolated:
      for (const auto& s : spans) out.push_back({s.begin, s.end, false});
      return out;
    case SplitBehavior::Contiguous: {
      bool previous_match = false;
      for (const auto& s : spans) {
        if (s.is_match == previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back({s.begin, s.end, false});
        }
        previous_match = s.is_match;
      }
      return out;
    }
    case SplitBehavior::MergedWithPrevious: {
      bool previous_match = false;
      for (const auto& s : spans) {
        if (s.is_match && !previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back({s.begin, s.end, false});
        }
        previous_match = s.is_match;
      }
      return out;
    }
    case SplitBehavior::MergedWithNext: {
      // A match joins the piece after it, unless that piece is itself a match.
      bool next_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !next_match && !out.empty()) {
          out.back().begin = it->begin;
        } else {
          out.push_back({it->begin, it->end, false});
        }
        next_match = it->is_match;
      }
      std::reverse(out.begin(), out.end());
      return out;
    }
  }
  return out;
}

}  // namespace

void split_piece(const Piece& piece, const std::vector<Span>& spans, SplitBehavior behavior,
                 std::vector<Piece>& out) {
  for (const auto& s : group(spans, behavior)) {
    if (s.is_match || s.begin == s.end) continue;
    Piece p;
    p.text = piece.text.substr(s.begin, s.end - s.begin);
    p.at_origin = piece.at_origin && s.begin == 0;
    out.push_back(std::move(p));
  }
}

void for_each_text_piece(std::vector<Piece>& pieces,
                         const std::function<void(Piece&&, std::vector<Piece>&)>& fn) {
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (auto& p : pieces) {
    if (p.added_id >= 0) {
      out.push_back(std::move(p));
    } else {
      std::vector<Piece> parts;
      fn(std::move(p), parts);
      for (auto& part : parts)
        if (!part.text.empty() || part.added_id >= 0) out.push_back(std::move(part));
    }
  }
  pieces = std::move(out);
}

}  // namespace tquant::tok
