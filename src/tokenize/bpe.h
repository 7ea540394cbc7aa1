#pragma once
// Byte-pair encoding as HF's BPE model does it: a word starts as one symbol per character
// (continuing_subword_prefix / end_of_word_suffix added, unknown characters replaced by byte
// tokens <0xXX> when byte_fallback is on and they exist, otherwise by unk_token, fused when
// fuse_unk), then the lowest-ranked adjacent pair is merged, leftmost first, until none is left.
// Merging uses a heap of (rank, position) over a linked list of symbols, O(n log n), because a
// SentencePiece-style tokenizer without pre-tokenizer sees a whole file as one word.
#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tokenize/merge_table.h"
#include "tokenize/model.h"
#include "tokenize/vocab.h"
#include "tokenize/word_cache.h"

namespace tquant::tok {

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::optional<std::string> continuing_subword_prefix;
  std::optional<std::string> end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class Bpe : public Model {
 public:
  // Merge i has rank i. A merge whose parts or result are not in the vocabulary fails, naming
  // `merges_where` and the index.
  Bpe(Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
      const JsonView& merges_where);

  void tokenize(std::string_view word, std::vector<int32_t>& out) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override { return vocab_.find(token); }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return vocab_.size(); }
  int32_t id_bound() const override { return vocab_.id_bound(); }
  std::optional<std::string> unk_token() const override { return options_.unk_token; }

  // Uncached merge of one word, exposed for tests of the merge loop itself.
  std::vector<int32_t> merge_word(std::string_view word) const;

 private:
  int32_t unk_id() const;

  Vocab vocab_;
  MergeTable merges_;
  BpeOptions options_;
  std::array<int32_t, 256> byte_ids_;  // id of "<0xXX>", -1 if absent
  WordCache cache_;
};

}  // namespace tquant::tok
