#pragma once
// HF's truncate_encodings: cut one sequence, or a pair, down to max_length tokens (the caller
// has already subtracted the special tokens the post-processor will add).
#include <cstddef>
#include <optional>

#include "tokenize/tokenizer.h"

namespace tquant::tok {

class JsonView;

enum class TruncationStrategy { LongestFirst, OnlyFirst, OnlySecond };
enum class TruncationDirection { Right, Left };

struct TruncationParams {
  size_t max_length = 0;
  TruncationStrategy strategy = TruncationStrategy::LongestFirst;
  TruncationDirection direction = TruncationDirection::Right;
};

// The "truncation" field of tokenizer.json; null gives nullopt.
std::optional<TruncationParams> read_truncation(const JsonView& json);

// `pair` may be null. Fails when the strategy cannot reach max_length (HF's errors).
void truncate_encodings(Encoding& first, Encoding* pair, const TruncationParams& params);

}  // namespace tquant::tok
