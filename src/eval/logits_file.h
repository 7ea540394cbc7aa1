#pragma once
// Saved FP reference distributions for KL-divergence measurements, as llama.cpp's perplexity
// tool keeps them: for every scored token, the log-softmax over the vocabulary stored as fp16
// (near-zero log-probabilities, which carry the KL weight, keep ~1e-4 absolute precision).
// The file also records a hash of the scored target ids, so a comparison against a different
// token stream (other data, ctx, stride or tokenizer) is refused instead of silently wrong.
//
// Layout: "TQLOGP01", uint64 header length, JSON header {"vocab","tokens","targets_fnv1a64",
// "protocol"},
// then tokens × vocab little-endian fp16 values.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "eval/perplexity.h"

namespace tquant {

// How tokens were scored, recorded in the file and checked on comparison.
std::string scoring_protocol(int ctx, int stride, bool bos);

class LogitsWriter : public ScoredTokenSink {
 public:
  // `protocol` describes how tokens were scored (ctx, stride, BOS); a comparison must match it.
  LogitsWriter(std::filesystem::path path, std::string protocol);
  ~LogitsWriter() override;
  void begin(int64_t scored_tokens, int64_t vocab) override;
  void on_token(const float* logits, int64_t vocab, int32_t target) override;
  // Writes the header and moves the file into place; until then nothing exists at `path`.
  void finish();

 private:
  std::filesystem::path path_, tmp_;
  std::string protocol_;
  std::ofstream out_;
  int64_t expected_ = 0, written_ = 0, vocab_ = 0;
  uint64_t hash_ = 14695981039346656037ull;
  std::vector<uint16_t> row_;
  std::vector<float> lp_;
};

struct KldResult {
  double mean = 0;
  double stderr_mean = 0;
  double p99 = 0;
  double median = 0;
  double max = 0;
  double top1_agreement = 0;  // fraction of tokens whose argmax matches the reference
  double ppl_reference = 0;   // perplexity under the saved reference distributions
  int64_t tokens = 0;
};

class KldComparer : public ScoredTokenSink {
 public:
  KldComparer(std::filesystem::path reference, std::string protocol);
  void begin(int64_t scored_tokens, int64_t vocab) override;
  void on_token(const float* logits, int64_t vocab, int32_t target) override;
  KldResult finish();

 private:
  std::filesystem::path path_;
  std::ifstream in_;
  int64_t tokens_ = 0, vocab_ = 0, seen_ = 0;
  uint64_t expected_hash_ = 0;
  uint64_t hash_ = 14695981039346656037ull;
  std::vector<uint16_t> row_;
  std::vector<float> ref_, lq_;
  std::vector<double> kld_;
  int64_t top1_same_ = 0;
  double ref_nll_ = 0;
};

// log-softmax of one row, in double for the normaliser.
void log_softmax(const float* logits, int64_t n, float* out);

}  // namespace tquant
