#pragma once
// Per-embedding-group (PEG) channel maps, METHODS.md §2: the C channels of an activation are
// split into K groups that each get their own range over their channels and all tokens.
#include <cstdint>
#include <span>
#include <vector>

namespace tquant {

// Sizes of K contiguous groups covering C items, differing by at most one, larger ones first
// (C = 10, K = 4 -> 3, 3, 2, 2). When K does not divide C this is used instead of refusing: the
// paper's K = 6 for d = 768 divides, but other widths should still work. K > C is an error
// (a group would be empty), as is K < 1.
std::vector<int64_t> balanced_group_sizes(int64_t items, int64_t groups);

// Channel -> group for contiguous groups in channel order (the paper without permutation).
std::vector<int32_t> contiguous_channel_groups(int64_t channels, int64_t groups);

// Range-based permutation: sort channels by their calibration range (max - min) ascending, ties by
// channel index so the result never depends on sort stability, and cut the sorted order into K
// contiguous balanced groups. Channels of similar range — in particular the few outlier channels,
// which sort last — share a group. Ranges must be finite and non-negative.
std::vector<int32_t> range_permuted_channel_groups(std::span<const float> channel_range,
                                                   int64_t groups);

}  // namespace tquant
