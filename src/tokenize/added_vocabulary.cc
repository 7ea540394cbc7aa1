#include "tokenize/added_vocabulary.h"

#include <algorithm>

#include "tokenize/model.h"
#include "tokenize/normalizers.h"
#include "tokenize/unicode.h"

namespace tquant::tok {

namespace {

bool same_token(const AddedToken& a, const AddedToken& b) {
  return a.content == b.content && a.single_word == b.single_word && a.lstrip == b.lstrip && a.rstrip == b.rstrip &&
         a.normalized == b.normalized && a.special == b.special;
}

// The code point that ends just before byte `end` (end > 0).
char32_t code_point_before(std::string_view s, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  return unicode::next_code_point(s, start);
}

// Start of the whitespace run that ends `s` (regex `\s*$`).
size_t trailing_space_start(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t i = start;
    if (!unicode::is_whitespace(unicode::next_code_point(s, i))) break;
    end = start;
  }
  return end;
}

// Length of the whitespace run that starts `s` (regex `^\s*`).
size_t leading_space_length(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    if (!unicode::is_whitespace(unicode::next_code_point(s, j))) break;
    i = j;
  }
  return i;
}

}  // namespace

void AddedVocabulary::Matcher::build(const std::vector<std::string>& patterns, std::vector<int32_t> ids) {
  nodes_.assign(1, Node{});
  edges_.clear();
  std::fill(std::begin(first_byte_), std::end(first_byte_), false);
  ids_ = std::move(ids);
  for (size_t p = 0; p < patterns.size(); ++p) {
    const std::string& pattern = patterns[p];
    if (pattern.empty()) continue;
    first_byte_[static_cast<unsigned char>(pattern[0])] = true;
    int32_t node = 0;
    for (unsigned char b : pattern) {
      const uint64_t key = (static_cast<uint64_t>(node) << 8) | b;
      auto it = edges_.find(key);
      if (it == edges_.end()) {
        nodes_.push_back(Node{});
        it = edges_.emplace(key, static_cast<int32_t>(nodes_.size() - 1)).first;
      }
      node = it->second;
    }
    // The first of several identical patterns wins.
    if (nodes_[node].terminal < 0) nodes_[node].terminal = static_cast<int32_t>(p);
  }
}

int32_t AddedVocabulary::Matcher::child(int32_t node, unsigned char byte) const {
  auto it = edges_.find((static_cast<uint64_t>(node) << 8) | byte);
  return it == edges_.end() ? -1 : it->second;
}

std::vector<AddedVocabulary::Matcher::Match> AddedVocabulary::Matcher::find_all(std::string_view text) const {
  std::vector<Match> matches;
  if (ids_.empty()) return matches;
  size_t i = 0;
  while (i < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    int32_t node = 0;
    size_t best_end = 0;
    int32_t best = -1;
    for (size_t j = i; j < text.size(); ++j) {
      node = child(node, static_cast<unsigned char>(text[j]));
      if (node < 0) break;
      if (nodes_[node].terminal >= 0) {
        best = nodes_[node].terminal;
        best_end = j + 1;
      }
    }
    if (best >= 0) {
      matches.push_back({i, best_end, ids_[best]});
      i = best_end;
    } else {
      ++i;
    }
  }
  return matches;
}

std::optional<int32_t> AddedVocabulary::token_to_id(std::string_view content) const {
  auto it = to_id_.find(content);
  if (it == to_id_.end()) return std::nullopt;
  return it->second;
}

const AddedToken* AddedVocabulary::token(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second;
}

void AddedVocabulary::add_tokens(const std::vector<AddedToken>& tokens, const Model& model,
                                 const Normalizer* normalizer) {
  for (const auto& t : tokens) {
    if (t.special && !t.content.empty() && special_set_.insert(t.content).second) special_.push_back(t);
  }
  const auto model_size = static_cast<int32_t>(model.vocab_size());
  for (const auto& t : tokens) {
    if (t.content.empty()) continue;
    if (std::any_of(by_id_.begin(), by_id_.end(), [&](const auto& kv) { return same_token(kv.second, t); })) continue;
    int32_t id;
    if (auto known = token_to_id(t.content)) {
      id = *known;
    } else if (auto in_model = model.token_to_id(t.content)) {
      id = *in_model;
    } else if (to_id_.empty()) {
      id = model_size;
    } else {
      int32_t max_id = 0;
      for (const auto& kv : to_id_) max_id = std::max(max_id, kv.second);
      id = (max_id >= model_size || model_size == 0) ? max_id + 1 : model_size;
    }
    to_id_[t.content] = id;
    by_id_[id] = t;
    if (!special_set_.count(t.content)) added_.push_back(t);
    id_bound_ = std::max(id_bound_, id + 1);
  }
  refresh(model, normalizer);
}

void AddedVocabulary::refresh(const Model& model, const Normalizer* normalizer) {
  std::vector<std::string> raw_patterns, norm_patterns;
  std::vector<int32_t> raw_ids, norm_ids;
  auto visit = [&](const AddedToken& t) {
    auto id = token_to_id(t.content);
    if (!id) id = model.token_to_id(t.content);
    if (!id) return;
    if (t.normalized) {
      std::string pattern = t.content;
      if (normalizer) normalizer->normalize(pattern);
      norm_patterns.push_back(std::move(pattern));
      norm_ids.push_back(*id);
    } else {
      raw_patterns.push_back(t.content);
      raw_ids.push_back(*id);
    }
  };
  for (const auto& t : special_) visit(t);
  for (const auto& t : added_) visit(t);
  raw_matcher_.build(raw_patterns, std::move(raw_ids));
  normalized_matcher_.build(norm_patterns, std::move(norm_ids));
}

void AddedVocabulary::split(const Piece& piece, const Matcher& matcher, std::vector<Piece>& out) const {
  const std::string_view s = piece.text;
  size_t start_offset = 0;
  auto emit = [&](size_t b, size_t e, int32_t id) {
    Piece p;
    p.text = std::string(s.substr(b, e - b));
    p.added_id = id;
    p.at_origin = piece.at_origin && b == 0;
    out.push_back(std::move(p));
  };
  for (const auto& m : matcher.find_all(s)) {
    size_t start = m.begin, stop = m.end;
    const AddedToken* t = token(m.id);
    if (t != nullptr && t->single_word) {
      const bool word_before = start > 0 && unicode::is_word_char(code_point_before(s, start));
      size_t after = stop;
      const bool word_after = stop < s.size() && unicode::is_word_char(unicode::next_code_point(s, after));
      if (word_before || word_after) continue;
    }
    if (t != nullptr && t->lstrip) start = std::max(trailing_space_start(s.substr(0, start)), start_offset);
    if (t != nullptr && t->rstrip) stop += leading_space_length(s.substr(stop));
    if (start_offset < start) emit(start_offset, start, -1);
    emit(start, stop, m.id);
    start_offset = stop;
  }
  if (start_offset < s.size()) emit(start_offset, s.size(), -1);
}

std::vector<Piece> AddedVocabulary::extract_and_normalize(std::string_view text, const Normalizer* normalizer) const {
  std::vector<Piece> pieces;
  pieces.push_back(Piece{std::string(text), -1, true});
  for_each_text_piece(pieces, [&](Piece&& p, std::vector<Piece>& out) { split(p, raw_matcher_, out); });
  for_each_text_piece(pieces, [&](Piece&& p, std::vector<Piece>& out) {
    if (normalizer) normalizer->normalize(p.text);
    split(p, normalized_matcher_, out);
  });
  return pieces;
}

}  // namespace tquant::tok
