#include "analysis/windows.h"

#include <algorithm>
#include <random>

#include "core/error.h"

namespace tquant::analysis {

SpecialTemplate special_template(const Tokenizer& tokenizer) {
  // Any ordinary text works as the probe; it only has to tokenize to at least one token.
  const char* probe = "Hello world";
  const std::vector<int32_t> bare = tokenizer.encode(probe, false).ids;
  const std::vector<int32_t> full = tokenizer.encode(probe, true).ids;
  if (bare.empty()) fail("the tokenizer encodes the probe text \"{}\" to no tokens", probe);
  const auto at = std::search(full.begin(), full.end(), bare.begin(), bare.end());
  if (at == full.end())
    fail("the tokenizer's post-processor changes the text's own tokens (\"{}\"), so the special tokens "
         "it adds cannot be told apart",
         probe);
  SpecialTemplate t;
  t.prefix.assign(full.begin(), at);
  t.suffix.assign(at + bare.size(), full.end());
  return t;
}

std::vector<int32_t> special_token_ids(const Tokenizer& tokenizer, const SpecialTemplate& t) {
  std::vector<int32_t> ids = t.prefix;
  ids.insert(ids.end(), t.suffix.begin(), t.suffix.end());
  for (int32_t id : {tokenizer.bos_id(), tokenizer.eos_id()})
    if (id >= 0) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::vector<int64_t> window_starts(int64_t n_tokens, int64_t window, int samples, std::optional<uint64_t> seed) {
  if (samples < 1) fail("--samples must be at least 1, got {}", samples);
  if (window < 1) fail("windows must hold at least one text token, got {}", window);
  if (window > n_tokens) fail("windows of {} tokens do not fit in {} tokens of data", window, n_tokens);
  const int64_t last = n_tokens - window;
  std::vector<int64_t> starts(samples);
  if (seed) {
    std::mt19937_64 rng(*seed);
    for (auto& s : starts) s = static_cast<int64_t>(rng() % static_cast<uint64_t>(last + 1));
  } else {
    for (int i = 0; i < samples; ++i) starts[i] = samples == 1 ? 0 : last * i / (samples - 1);
  }
  return starts;
}

Batch window_batch(const std::vector<int32_t>& tokens, const std::vector<int64_t>& starts, int64_t window,
                   const SpecialTemplate& t, size_t first, size_t count) {
  Batch b;
  b.batch = static_cast<int>(count);
  b.seq = static_cast<int>(window + t.size());
  b.ids.reserve(static_cast<size_t>(b.batch) * b.seq);
  for (size_t i = first; i < first + count; ++i) {
    const int64_t s = starts.at(i);
    if (s < 0 || s + window > static_cast<int64_t>(tokens.size()))
      fail("window {} starts at token {} and does not fit in {} tokens", i, s, tokens.size());
    b.ids.insert(b.ids.end(), t.prefix.begin(), t.prefix.end());
    b.ids.insert(b.ids.end(), tokens.begin() + s, tokens.begin() + s + window);
    b.ids.insert(b.ids.end(), t.suffix.begin(), t.suffix.end());
  }
  b.lengths.assign(b.batch, b.seq);
  return b;
}

}  // namespace tquant::analysis
