#pragma once
// The observing hook behind `tquant analyze`: streaming statistics of every [B, T, C] (and
// [B, C]) quantization point over the unpadded tokens, and where the outliers sit.
//
// It needs two forward passes over the same batches, because the questions of the second
// depend on answers of the first, and keeping the activations instead would cost memory:
//   1. observe:   count, min, max, mean, std, kurtosis (Moments) and each channel's min and max;
//                 at the end, the outlier dims (rule below).
//   2. attribute: how many values lie beyond 6 std of the mean, and at which kinds of token;
//                 the distinct tokens with the largest |x| in the top outlier dims; the share of the
//                 outlier dims' magnitude that special tokens and delimiters carry.
// Outlier rule: channel c is an outlier dim when max|x_c| (over all analysed tokens) exceeds
// mean + 6 std of the C per-channel maxima (population std). With C < 38 no channel can reach
// that z-score ((C-1)/sqrt(C) < 6), so small points report none.
#include <array>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "analysis/moments.h"
#include "analysis/token_kinds.h"
#include "model/hooks.h"

namespace tquant::analysis {

// One token occurrence: which window, which position in it, which id, and the value there.
struct TokenValue {
  int32_t id = 0;
  int64_t sample = 0;
  int32_t position = 0;
  float value = 0;
};

struct PointStats {
  std::string name;
  int layer = -1;
  int64_t channels = 0;
  int64_t tokens = 0;  // rows analysed (unpadded tokens; one per sequence for [B, C] points)

  // Pass 1.
  Moments moments;
  std::vector<float> channel_min, channel_max;
  double dim_max_mean = 0, dim_max_std = 0, dim_threshold = 0;  // of the per-channel max |x|
  std::vector<int32_t> outlier_dims;  // largest max |x| first
  // The dims whose top tokens are reported: the first outlier dims, or the largest channel
  // (not an outlier) when there are none, so a reader still sees where the extremes sit.
  std::vector<int32_t> inspected_dims;

  // Pass 2.
  int64_t beyond_6sigma = 0;
  std::array<int64_t, kTokenKinds> beyond_6sigma_by_kind{};
  std::array<int64_t, kTokenKinds> tokens_by_kind{};
  std::array<double, kTokenKinds> outlier_abs_by_kind{};    // Σ|x| over the outlier dims
  std::vector<std::vector<TokenValue>> top_tokens;          // per inspected dim: distinct ids, largest |x| first

  float channel_max_abs(int64_t c) const { return std::max(-channel_min[c], channel_max[c]); }
};

class ActivationStats : public Hook {
 public:
  struct Options {
    int inspect_dims = 8;    // outlier dims whose carrying tokens are listed
    int top_tokens = 5;      // tokens listed per inspected dim
    double sigmas = 6;       // for both the beyond-k-sigma count and the outlier-dim rule
  };
  // `select` picks the points by name; 4-D points (scores, probs) are never taken here.
  ActivationStats(std::function<bool(const std::string&)> select, TokenClassifier classify, Options options);
  ActivationStats(std::function<bool(const std::string&)> select, TokenClassifier classify)
      : ActivationStats(std::move(select), std::move(classify), Options{}) {}

  // Ends pass 1 (finds the outlier dims of every point) and starts pass 2, which must see the
  // same batches again.
  void start_attribution();
  // The index of the current batch's first sequence among all analysed windows.
  void set_first_sample(int64_t s) { first_sample_ = s; }

  void on_activation(const std::string& point, Tensor& x, const BatchInfo& batch) override;

  // In the order the forward pass first reached them.
  const std::vector<PointStats>& points() const { return points_; }

 private:
  struct Rows;
  void observe(PointStats& p, const Tensor& x, const Rows& rows);
  void attribute(PointStats& p, const Tensor& x, const Rows& rows);
  void find_outliers(PointStats& p) const;

  std::function<bool(const std::string&)> select_;
  TokenClassifier classify_;
  Options options_;
  bool attributing_ = false;
  int64_t first_sample_ = 0;
  std::vector<PointStats> points_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace tquant::analysis
