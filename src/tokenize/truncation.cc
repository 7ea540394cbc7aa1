#include "tokenize/truncation.h"

#include <algorithm>

#include "core/error.h"
#include "tokenize/json_view.h"

namespace tquant::tok {

namespace {

void truncate(Encoding& e, size_t n, TruncationDirection direction) {
  if (e.ids.size() <= n) return;
  if (direction == TruncationDirection::Right) {
    e.ids.resize(n);
    e.type_ids.resize(n);
  } else {
    e.ids.erase(e.ids.begin(), e.ids.end() - static_cast<std::ptrdiff_t>(n));
    e.type_ids.erase(e.type_ids.begin(), e.type_ids.end() - static_cast<std::ptrdiff_t>(n));
  }
}

}  // namespace

std::optional<TruncationParams> read_truncation(const JsonView& json) {
  if (json.is_null()) return std::nullopt;
  TruncationParams p;
  const int64_t max_length = json.at("max_length").as_int();
  if (max_length < 0) json.at("max_length").fail_here("must not be negative");
  p.max_length = static_cast<size_t>(max_length);
  const std::string strategy = json.string_or("strategy", "LongestFirst");
  if (strategy == "LongestFirst") {
    p.strategy = TruncationStrategy::LongestFirst;
  } else if (strategy == "OnlyFirst") {
    p.strategy = TruncationStrategy::OnlyFirst;
  } else if (strategy == "OnlySecond") {
    p.strategy = TruncationStrategy::OnlySecond;
  } else {
    json.at("strategy").fail_unsupported(strategy, {"LongestFirst", "OnlyFirst", "OnlySecond"});
  }
  const std::string direction = json.string_or("direction", "Right");
  if (direction == "Right") {
    p.direction = TruncationDirection::Right;
  } else if (direction == "Left") {
    p.direction = TruncationDirection::Left;
  } else {
    json.at("direction").fail_unsupported(direction, {"Right", "Left"});
  }
  return p;
}

void truncate_encodings(Encoding& first, Encoding* pair, const TruncationParams& params) {
  const size_t n1_total = first.ids.size(), n2_total = pair ? pair->ids.size() : 0;
  if (params.max_length == 0) {
    truncate(first, 0, params.direction);
    if (pair) truncate(*pair, 0, params.direction);
    return;
  }
  const size_t total = n1_total + n2_total;
  if (total <= params.max_length) return;
  const size_t to_remove = total - params.max_length;

  if (params.strategy == TruncationStrategy::LongestFirst) {
    if (!pair) {
      truncate(first, params.max_length, params.direction);
      return;
    }
    // The shorter sequence keeps what it can up to half; the longer one gets the rest.
    size_t n1 = n1_total, n2 = n2_total;
    const bool swap = n1 > n2;
    if (swap) std::swap(n1, n2);
    n2 = n1 > params.max_length ? n1 : std::max(n1, params.max_length - n1);
    if (n1 + n2 > params.max_length) {
      n1 = params.max_length / 2;
      n2 = n1 + params.max_length % 2;
    }
    if (swap) std::swap(n1, n2);
    truncate(first, n1, params.direction);
    truncate(*pair, n2, params.direction);
    return;
  }
  Encoding* target = params.strategy == TruncationStrategy::OnlyFirst ? &first : pair;
  if (target == nullptr) fail("truncation: strategy only_second needs a second sequence");
  if (target->ids.size() <= to_remove)
    fail("truncation: the {} sequence ({} tokens) is too short to remove {} tokens",
         params.strategy == TruncationStrategy::OnlyFirst ? "first" : "second", target->ids.size(), to_remove);
  truncate(*target, target->ids.size() - to_remove, params.direction);
}

}  // namespace tquant::tok
