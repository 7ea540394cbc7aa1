#include "eval/perplexity.h"

#include <chrono>
#include <cmath>

#include "core/error.h"
#include "kernels/vexp.h"

namespace tquant {

std::vector<Window> plan_windows(int64_t n, const PerplexityOptions& o) {
  const int64_t span = o.ctx - (o.bos ? 1 : 0);  // text tokens per window
  if (o.ctx < 2) fail("--ctx must be at least 2, got {}", o.ctx);
  if (o.stride < 1) fail("--stride must be at least 1, got {}", o.stride);
  if (o.stride > o.ctx) fail("--stride ({}) must not exceed --ctx ({})", o.stride, o.ctx);
  // With BOS the window holds ctx-1 text tokens; a stride of ctx then means "no overlap".
  const int64_t stride = std::min<int64_t>(o.stride, span);
  std::vector<Window> windows;
  int64_t scored_until = 0;  // every text token before this is already scored
  for (int64_t begin = 0; begin < n; begin += stride) {
    const int64_t end = std::min(begin + span, n);
    Window w;
    w.begin = begin;
    w.length = end - begin;
    // Without BOS a window's first token has no context and cannot be scored.
    w.score_from = std::max<int64_t>(scored_until - begin, o.bos ? 0 : 1);
    if (w.score_from < w.length) windows.push_back(w);
    scored_until = end;
    if (end == n) break;
  }
  return windows;
}

PerplexityResult evaluate_perplexity(const Model& model, const std::vector<int32_t>& tokens,
                                     const PerplexityOptions& o, const Hooks* hooks, ScoredTokenSink* sink) {
  if (model.config().head != Head::CausalLM)
    fail("perplexity needs a causal language model; {} is {}", model.dir().string(), model.config().architecture);
  if (o.bos && o.bos_id < 0) fail("--bos was given but the tokenizer has no BOS token");
  const std::vector<Window> windows = plan_windows(static_cast<int64_t>(tokens.size()), o);
  if (windows.empty()) fail("the data holds too few tokens ({}) to score any", tokens.size());
  const int64_t V = model.config().vocab_size;
  const int shift = o.bos ? 1 : 0;
  const int per_pass = o.batch > 0 ? o.batch : std::max(1, 2048 / o.ctx);

  int64_t total_scored = 0;
  for (const Window& w : windows) total_scored += w.length - w.score_from;
  if (sink) sink->begin(total_scored, V);

  std::vector<double> nll;
  nll.reserve(total_scored);
  const auto start = std::chrono::steady_clock::now();
  for (size_t first = 0; first < windows.size(); first += per_pass) {
    const size_t count = std::min<size_t>(per_pass, windows.size() - first);
    Batch batch;
    batch.batch = static_cast<int>(count);
    batch.seq = 0;
    for (size_t i = 0; i < count; ++i)
      batch.seq = std::max<int>(batch.seq, static_cast<int>(windows[first + i].length) + shift);
    batch.ids.assign(int64_t{batch.batch} * batch.seq, 0);
    batch.lengths.resize(count);
    for (size_t i = 0; i < count; ++i) {
      const Window& w = windows[first + i];
      int32_t* row = batch.ids.data() + i * batch.seq;
      if (o.bos) row[0] = o.bos_id;
      std::copy(tokens.begin() + w.begin, tokens.begin() + w.begin + w.length, row + shift);
      batch.lengths[i] = static_cast<int>(w.length) + shift;
    }
    const Tensor logits = model.forward(batch, hooks);

    for (size_t i = 0; i < count; ++i) {
      const Window& w = windows[first + i];
      // Text token j (window-relative) sits at position j + shift and is predicted by the
      // logits one position earlier.
      const int64_t n_scored = w.length - w.score_from;
      std::vector<double> row_nll(n_scored);
#pragma omp parallel for schedule(static)
      for (int64_t s = 0; s < n_scored; ++s) {
        const int64_t j = w.score_from + s;
        const float* l = logits.data() + (i * batch.seq + j + shift - 1) * V;
        row_nll[s] = log_sum_exp(l, V) - l[tokens[w.begin + j]];
      }
      nll.insert(nll.end(), row_nll.begin(), row_nll.end());
      if (sink)
        for (int64_t s = 0; s < n_scored; ++s) {
          const int64_t j = w.score_from + s;
          sink->on_token(logits.data() + (i * batch.seq + j + shift - 1) * V, V, tokens[w.begin + j]);
        }
    }
    if (o.progress) o.progress(static_cast<int64_t>(nll.size()), total_scored);
  }
  PerplexityResult r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.tokens_scored = static_cast<int64_t>(nll.size());
  r.windows = static_cast<int64_t>(windows.size());
  double sum = 0, sum2 = 0;
  for (double x : nll) sum += x;
  r.nll = sum / r.tokens_scored;
  for (double x : nll) sum2 += (x - r.nll) * (x - r.nll);
  const double var = r.tokens_scored > 1 ? sum2 / (r.tokens_scored - 1) : 0.0;
  r.nll_stderr = std::sqrt(var / r.tokens_scored);
  r.ppl = std::exp(r.nll);
  r.ppl_stderr = r.ppl * r.nll_stderr;
  return r;
}

}  // namespace tquant
