#pragma once
// Per-head attention statistics from `layers.N.attn.probs` ([B, H, T, T]), over each query row's
// visible keys only (causal: keys 0..i; bidirectional: the unpadded keys), averaged over all
// unpadded query rows of all windows:
//   - special_mass:   attention probability on special tokens (BOS/[CLS]/[SEP]/EOS);
//   - delimiter_mass: probability on delimiters (punctuation/whitespace-only tokens);
//   - entropy:        -Σ p ln p, in nats;
//   - uniform_special / uniform_delimiter: what those masses would be under uniform attention
//     over the same visible keys, the baseline that tells a "no-op" head from a diffuse one.
// And per layer, the distribution of the raw scores (`layers.N.attn.scores`, Q·Kᵀ before the
// 1/√d scaling) over the visible entries.
#include <map>
#include <string>
#include <vector>

#include "analysis/moments.h"
#include "analysis/token_kinds.h"
#include "model/hooks.h"

namespace tquant::analysis {

struct HeadStats {
  int layer = 0, head = 0;
  int64_t rows = 0;  // query rows averaged over
  double special_mass = 0, delimiter_mass = 0, entropy = 0, uniform_special = 0, uniform_delimiter = 0;  // means
  double noop_mass() const { return special_mass + delimiter_mass; }
};

struct ScoreStats {
  int layer = 0;
  Moments moments;
};

class AttentionStats : public Hook {
 public:
  explicit AttentionStats(TokenClassifier classify) : classify_(std::move(classify)) {}
  void on_activation(const std::string& point, Tensor& x, const BatchInfo& batch) override;

  // Ordered by layer, then head.
  std::vector<HeadStats> heads() const;
  std::vector<ScoreStats> scores() const;

 private:
  struct Sums {
    int64_t rows = 0;
    double special = 0, delimiter = 0, entropy = 0, uniform_special = 0, uniform_delimiter = 0;
  };
  TokenClassifier classify_;
  std::map<std::pair<int, int>, Sums> heads_;
  std::map<int, Moments> scores_;
};

// Keeps one head's probabilities for one window during a later pass: the heatmap's data.
struct CapturedAttention {
  int layer = 0, head = 0;
  int64_t sample = 0;
  int tokens = 0;               // positions kept (the first `tokens` of the window)
  std::vector<int32_t> ids;     // [tokens]
  std::vector<float> probs;     // [tokens x tokens], row = query, column = key
};

class AttentionCapture : public Hook {
 public:
  // Keeps the first `max_tokens` positions of window `sample`, head `head` of block `layer`.
  AttentionCapture(int layer, int head, int64_t sample, int max_tokens);
  void set_first_sample(int64_t s) { first_sample_ = s; }
  void on_activation(const std::string& point, Tensor& x, const BatchInfo& batch) override;
  bool captured() const { return !result_.probs.empty(); }
  const CapturedAttention& result() const { return result_; }

 private:
  std::string point_;
  int max_tokens_;
  int64_t first_sample_ = 0;
  CapturedAttention result_;
};

}  // namespace tquant::analysis
