#pragma once
// Added tokens (special or not) as HF's AddedVocabulary handles them: tokens with
// normalized=false are found in the raw text first; the rest of the text is normalized and then
// searched for the tokens with normalized=true, whose patterns are themselves normalized (so
// with a Prepend("▁") normalizer "<unk>" is looked for as "▁<unk>"). Matching is leftmost-longest;
// single_word, lstrip and rstrip then adjust or reject each match.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tokenize/split.h"
#include "tokenize/vocab.h"

namespace tquant::tok {

class Model;
class Normalizer;

struct AddedToken {
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

class AddedVocabulary {
 public:
  // Registers the tokens in order: a token the model knows keeps the model's id, others are
  // numbered after the model's vocabulary. Patterns of normalized tokens go through `normalizer`.
  void add_tokens(const std::vector<AddedToken>& tokens, const Model& model, const Normalizer* normalizer);

  // Cuts `text` into pieces, marking the added tokens it contains; normalizes the other pieces.
  std::vector<Piece> extract_and_normalize(std::string_view text, const Normalizer* normalizer) const;

  std::optional<int32_t> token_to_id(std::string_view content) const;
  const AddedToken* token(int32_t id) const;
  bool is_special(std::string_view content) const { return special_set_.count(std::string(content)) > 0; }
  int32_t id_bound() const { return id_bound_; }

 private:
  // Leftmost-longest search over a byte trie of the patterns.
  class Matcher {
   public:
    void build(const std::vector<std::string>& patterns, std::vector<int32_t> ids);
    // (begin, end, id) of non-overlapping leftmost-longest matches.
    struct Match {
      size_t begin, end;
      int32_t id;
    };
    std::vector<Match> find_all(std::string_view text) const;

   private:
    struct Node {
      int32_t terminal = -1;  // index into ids_
    };
    int32_t child(int32_t node, unsigned char byte) const;
    std::vector<Node> nodes_;
    std::unordered_map<uint64_t, int32_t> edges_;
    bool first_byte_[256] = {};
    std::vector<int32_t> ids_;
  };

  void refresh(const Model& model, const Normalizer* normalizer);
  void split(const Piece& piece, const Matcher& matcher, std::vector<Piece>& out) const;

  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> to_id_;
  std::unordered_map<int32_t, AddedToken> by_id_;
  std::vector<AddedToken> added_;    // non-special, in order of addition
  std::vector<AddedToken> special_;  // special, in order of addition
  std::unordered_set<std::string> special_set_;
  Matcher raw_matcher_;
  Matcher normalized_matcher_;
  int32_t id_bound_ = 0;
};

}  // namespace tquant::tok
