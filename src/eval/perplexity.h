#pragma once
// Perplexity over a token stream with the usual sliding-window protocol:
// windows of `ctx` tokens start every `stride` tokens; each window scores only the tokens past
// its overlap with the previous one, so with stride == ctx every token but the first of each
// window is scored. With `bos`, each window is BOS followed by ctx-1 text tokens, and the first
// text token is scored too (it is predicted from BOS).
#include <cstdint>
#include <functional>
#include <vector>

#include "model/hooks.h"
#include "model/model.h"

namespace tquant {

struct PerplexityOptions {
  int ctx = 512;
  int stride = 512;
  bool bos = false;
  int bos_id = -1;
  int batch = 0;  // windows per forward pass; 0 picks about 2048 tokens per pass
  std::function<void(int64_t done, int64_t total)> progress;
};

// Receives every scored token's logits, in a fixed order that depends only on the tokens and the
// options (not on batching or threads): used to save FP logits and to measure KL divergence.
class ScoredTokenSink {
 public:
  virtual ~ScoredTokenSink() = default;
  virtual void begin(int64_t scored_tokens, int64_t vocab) {}
  virtual void on_token(const float* logits, int64_t vocab, int32_t target) = 0;
};

struct PerplexityResult {
  double nll = 0;          // mean negative log-likelihood (nats)
  double nll_stderr = 0;   // standard error of that mean
  double ppl = 0;
  double ppl_stderr = 0;   // delta method: ppl * nll_stderr
  int64_t tokens_scored = 0;
  int64_t windows = 0;
  double seconds = 0;
};

struct Window {
  int64_t begin = 0;        // first text token
  int64_t length = 0;       // text tokens in the window
  int64_t score_from = 0;   // index within the text span of the first scored token
};

std::vector<Window> plan_windows(int64_t n_tokens, const PerplexityOptions& options);

PerplexityResult evaluate_perplexity(const Model& model, const std::vector<int32_t>& tokens,
                                     const PerplexityOptions& options, const Hooks* hooks = nullptr,
                                     ScoredTokenSink* sink = nullptr);

}  // namespace tquant
