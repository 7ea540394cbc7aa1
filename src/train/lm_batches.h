#pragma once
// Training batches for language-model pretraining, built from a tokenized corpus. Every batch is
// a pure function of (corpus, options, seed, index), so a resumed run sees exactly the batches an
// uninterrupted one would, whatever the thread count.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "model/model.h"
#include "tokenize/tokenizer.h"

namespace tquant::train {

constexpr int32_t kIgnoreLabel = -100;  // as PyTorch's cross_entropy ignore_index

// A batch with one target per position: the token to predict there, or kIgnoreLabel.
struct LmBatch {
  Batch batch;                  // right-padded; lengths filled in
  std::vector<int32_t> labels;  // [B*T]
  int64_t target_count() const;  // labels != kIgnoreLabel
};

// The corpus as documents of token ids (no special tokens). Each input file is read as UTF-8
// text; every non-blank line is encoded on its own; a blank line ends a document.
struct TokenCorpus {
  std::vector<int32_t> ids;         // all documents, concatenated
  std::vector<int64_t> doc_starts;  // offsets into ids; doc d is [doc_starts[d], doc_starts[d+1]) with a final sentinel
  int64_t documents() const { return static_cast<int64_t>(doc_starts.size()) - 1; }
};
TokenCorpus tokenize_corpus(const Tokenizer& tokenizer, const std::vector<std::filesystem::path>& files);

// The order in which an epoch visits items 0..n-1: a Fisher-Yates shuffle driven by a
// counter-based hash of (seed, epoch), so it is the same on every platform and standard library.
// The most recent epoch's permutation is cached behind a mutex: lookups are thread-safe, and copies
// share the cache (it depends only on n and seed, which copies share too).
class EpochOrder {
 public:
  EpochOrder(int64_t n, uint64_t seed);
  int64_t size() const { return n_; }
  // The items at positions [first, first + count) of the epoch-after-epoch stream.
  std::vector<int64_t> items(int64_t first, int count) const;

 private:
  struct Cache;
  int64_t n_;
  uint64_t seed_;
  std::shared_ptr<Cache> cache_;
};

struct MlmOptions {
  int seq_len = 128;         // including [CLS] and [SEP]
  float mask_prob = 0.15f;   // of the non-special positions
  float mask_token = 0.8f;   // of those: replaced by [MASK]; random token 0.1; unchanged 0.1
  float random_token = 0.1f;
  uint64_t seed = 0;
  // Pack consecutive documents into one sequence, separated by [SEP], while they fit (RoBERTa's
  // FULL-SENTENCES within document order). Short documents (dictionary entries, single
  // sentences) then fill whole sequences instead of padding.
  bool pack = false;
};

// BERT masked-LM sequences: the corpus cut into chunks of up to seq_len - 2 tokens (without
// `pack`, a chunk never spans two documents), each laid out as [CLS] chunk [SEP]. [SEP] is never
// a target. Chunks are visited in a fresh
// pseudo-random order every epoch (a function of seed and epoch).
class MlmBatches {
 public:
  MlmBatches(const TokenCorpus& corpus, const Tokenizer& tokenizer, MlmOptions options);
  int64_t sequences() const;  // chunks per epoch
  // Sequences [first, first + count) of the infinite epoch-after-epoch stream, masked with the
  // 80/10/10 rule; labels are the original ids at the chosen positions, kIgnoreLabel elsewhere.
  LmBatch batch(int64_t first, int count) const;

 private:
  struct Chunk {
    int64_t start;  // offset into ids_
    int32_t length;
  };
  void mask_sequence(int64_t index, const Chunk& chunk, int32_t* ids, int32_t* labels) const;

  MlmOptions options_;
  std::vector<int32_t> ids_;  // a copy of the corpus, so the corpus need not outlive this object
  std::vector<Chunk> chunks_;
  int32_t cls_ = -1, sep_ = -1, mask_ = -1, pad_ = -1;
  std::vector<int32_t> random_ids_;  // what the "random token" replacement draws from
  EpochOrder order_;
};

struct CausalOptions {
  int seq_len = 256;
  uint64_t seed = 0;
};

// Causal-LM windows: the documents joined, each preceded by BOS (when the tokenizer has one) and
// followed by EOS (when it has one), cut into windows of seq_len + 1 tokens; inputs are the first
// seq_len, labels the next-token targets. Windows are shuffled per epoch like MlmBatches.
class CausalBatches {
 public:
  CausalBatches(const TokenCorpus& corpus, const Tokenizer& tokenizer, CausalOptions options);
  int64_t sequences() const;
  LmBatch batch(int64_t first, int count) const;

 private:
  CausalOptions options_;
  std::vector<int32_t> stream_;  // the joined documents, cut to whole windows
  EpochOrder order_;
};

}  // namespace tquant::train
