#pragma once
// The analysed token windows: N windows of L tokens cut from the tokenized data, each wrapped in
// the special tokens the model's tokenizer post-processor adds to a single sequence (BOS for
// LLaMA, [CLS] … [SEP] for BERT), so the special tokens that attract "no-op" attention exist.
#include <cstdint>
#include <optional>
#include <vector>

#include "model/model.h"
#include "tokenize/tokenizer.h"

namespace tquant::analysis {

// The ids the post-processor puts before and after a single sequence. Found by encoding a probe
// text with and without special tokens, so it works for any post-processor the tokenizer knows.
struct SpecialTemplate {
  std::vector<int32_t> prefix, suffix;
  size_t size() const { return prefix.size() + suffix.size(); }
};
SpecialTemplate special_template(const Tokenizer& tokenizer);

// BOS/[CLS], EOS/[SEP] and the template's ids: the tokens counted as special.
std::vector<int32_t> special_token_ids(const Tokenizer& tokenizer, const SpecialTemplate& t);

// Start offsets of `samples` windows of `window` text tokens in a stream of `n_tokens`.
// Without a seed they are evenly spaced from the first to the last possible start (rounded
// down), so the whole text is sampled; with a seed, starts are drawn from mt19937_64(seed)
// (start = draw mod (n_tokens - window + 1)), whose output the C++ standard fixes, so a seed
// gives the same windows everywhere. Needs window <= n_tokens.
std::vector<int64_t> window_starts(int64_t n_tokens, int64_t window, int samples, std::optional<uint64_t> seed);

// Rows [first, first + count) of the plan as one batch: prefix + tokens[start, start + window)
// + suffix each; all rows have the same length, so nothing is padded.
Batch window_batch(const std::vector<int32_t>& tokens, const std::vector<int64_t>& starts, int64_t window,
                   const SpecialTemplate& t, size_t first, size_t count);

}  // namespace tquant::analysis
