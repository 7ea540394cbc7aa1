#pragma once
// WordPiece (BERT): greedy longest-match-first from the start of the word, pieces after the first
// carry continuing_subword_prefix ("##"). A word longer than max_input_chars_per_word characters,
// or one with any part that matches nothing, becomes a single unk_token.
#include <string>

#include "tokenize/model.h"
#include "tokenize/vocab.h"
#include "tokenize/word_cache.h"

namespace tquant::tok {

struct WordPieceOptions {
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  size_t max_input_chars_per_word = 100;
};

class WordPiece : public Model {
 public:
  WordPiece(Vocab vocab, WordPieceOptions options);

  void tokenize(std::string_view word, std::vector<int32_t>& out) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override { return vocab_.find(token); }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return vocab_.size(); }
  int32_t id_bound() const override { return vocab_.id_bound(); }
  std::optional<std::string> unk_token() const override { return options_.unk_token; }

 private:
  void tokenize_uncached(std::string_view word, std::vector<int32_t>& out) const;
  int32_t unk_id() const;

  Vocab vocab_;
  WordPieceOptions options_;
  WordCache cache_;
};

}  // namespace tquant::tok
