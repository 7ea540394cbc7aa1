#pragma once
// Training a BERT-style WordPiece tokenizer, as Hugging Face's WordPieceTrainer does: the words
// that BertNormalizer + BertPreTokenizer make of the text are counted, then merge-trained
// (train_merges.h) with the "##" continuing-subword prefix; the merges are dropped and the
// vocabulary becomes a WordPiece model. The result is a standard tokenizer.json (plus
// tokenizer_config.json and special_tokens_map.json) that Tokenizer::from_dir loads.
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenize/train_merges.h"

namespace tquant::tok {

struct WordPieceTrainerOptions {
  size_t vocab_size = 30000;  // special tokens included
  uint64_t min_frequency = 2;
  bool lowercase = false;     // BertNormalizer lowercase (and strip_accents)
  // Ids 0.. in this order; [UNK], [CLS], [SEP] are required by the model and post-processor.
  std::vector<std::string> special_tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
};

class WordPieceTrainer {
 public:
  explicit WordPieceTrainer(WordPieceTrainerOptions options);
  ~WordPieceTrainer();

  // Normalizes, pre-tokenizes and counts the words of one text (a line).
  void feed(std::string_view text);
  void feed_files(const std::vector<std::filesystem::path>& files);
  const std::map<std::string, uint64_t>& word_counts() const { return words_; }

  // Runs the merges; the vocabulary (index = id) is result().vocab.
  const MergeTrainerResult& train();
  // tokenizer.json, tokenizer_config.json, special_tokens_map.json (train() first).
  TrainedFiles files() const;

 private:
  struct Impl;
  WordPieceTrainerOptions options_;
  std::map<std::string, uint64_t> words_;
  MergeTrainerResult result_;
  bool trained_ = false;
  std::unique_ptr<Impl> impl_;
};

// The tokenizer.json a WordPiece trainer writes (exposed for the tests).
nlohmann::ordered_json wordpiece_tokenizer_json(const std::vector<std::string>& vocab, const WordPieceTrainerOptions& options);

}  // namespace tquant::tok
