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
#include <functional>
#include <nlohmann/json.hpp>
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

#include <filesystem>
#include <string_view>

namespace tquant::tok {

// The tokenizer folder a trainer produces: file name -> content.
struct TrainedFiles {
  std::vector<std::pair<std::string, std::string>> files;  // tokenizer.json, tokenizer_config.json, ...
};

// Calls `line` with each line of each file (UTF-8 checked; the '\n' is kept, as HF's trainer
// reads them). Fails naming a file that is missing, unreadable or not UTF-8.
void for_each_training_line(const std::vector<std::filesystem::path>& files,
                            const std::function<void(std::string_view)>& line);

// Writes the files into `out_dir` atomically (a temporary folder renamed into place). Fails if
// `out_dir` exists and is a file or a non-empty folder.
void write_tokenizer_folder(const std::filesystem::path& out_dir, const TrainedFiles& files);

// JSON text as tokenizer.json files are written: 2-space indent, UTF-8 kept as is.
std::string dump_json(const nlohmann::ordered_json& j);

}  // namespace tquant::tok
