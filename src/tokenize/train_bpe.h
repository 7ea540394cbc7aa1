#pragma once
// Training a GPT-2 style byte-level BPE tokenizer, as Hugging Face's BpeTrainer does behind
// ByteLevelBPETokenizer: text is cut with GPT-2's regex (ByteLevel pre-tokenizer, no prefix
// space), every byte shown as its printable code point; the alphabet is all 256 of them; the most
// frequent pair is merged until vocab_size (ties: the pair whose strings sort first).
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenize/train_merges.h"

namespace tquant::tok {

struct BpeTrainerOptions {
  size_t vocab_size = 30000;  // special tokens included
  uint64_t min_frequency = 2;
  bool lowercase = false;     // adds a Lowercase normalizer
  std::vector<std::string> special_tokens = {"<|endoftext|>"};  // ids 0..
};

class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainerOptions options);
  ~BpeTrainer();

  void feed(std::string_view text);
  void feed_files(const std::vector<std::filesystem::path>& files);
  const std::map<std::string, uint64_t>& word_counts() const { return words_; }

  const MergeTrainerResult& train();
  // tokenizer.json, tokenizer_config.json, special_tokens_map.json (train() first).
  TrainedFiles files() const;

 private:
  struct Impl;
  BpeTrainerOptions options_;
  std::map<std::string, uint64_t> words_;
  MergeTrainerResult result_;
  bool trained_ = false;
  std::unique_ptr<Impl> impl_;
};

nlohmann::ordered_json bpe_tokenizer_json(const MergeTrainerResult& result, const BpeTrainerOptions& options);

}  // namespace tquant::tok
