#pragma once
// The merge trainer shared by train_wordpiece and train_bpe: Hugging Face's BpeTrainer semantics
// on a table of pre-tokenized words. The vocabulary starts with the special tokens, then the
// alphabet (every code point seen, plus any initial alphabet, sorted by code point), then, when a
// continuing-subword prefix is set, that prefix + every code point seen after a word's first
// (sorted likewise); then the most frequent adjacent pair is merged, repeatedly, until the
// vocabulary reaches vocab_size or no pair occurs at least min_frequency times. Ties between
// equally frequent pairs go to the pair whose (left, right) strings sort first, so the result
// depends only on the input.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace tquant::tok {

struct MergeTrainerOptions {
  size_t vocab_size = 30000;   // specials included
  uint64_t min_frequency = 2;  // a pair seen fewer times is never merged
  std::vector<std::string> special_tokens;
  std::vector<std::string> initial_alphabet;  // single code points, always in the vocabulary
  std::string continuing_subword_prefix;      // "##" for WordPiece, "" for byte-level BPE
};

struct MergeTrainerResult {
  std::vector<std::string> vocab;  // index = id
  std::vector<std::pair<std::string, std::string>> merges;  // in the order they were learned
  size_t initial_size = 0;  // specials + alphabet, before any merge
};

// word -> number of occurrences (words are UTF-8, non-empty). Fails when vocab_size is smaller
// than the special tokens plus the alphabet.
MergeTrainerResult train_merges(const std::map<std::string, uint64_t>& word_counts, const MergeTrainerOptions& options);

}  // namespace tquant::tok
