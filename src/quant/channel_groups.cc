#include "quant/channel_groups.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace tquant {

std::vector<int64_t> balanced_group_sizes(int64_t items, int64_t groups) {
  if (groups < 1) fail("PEG: {} groups requested; need at least 1", groups);
  if (groups > items)
    fail("PEG: {} groups for {} channels would leave groups empty (need groups <= channels)", groups,
         items);
  std::vector<int64_t> sizes(groups, items / groups);
  for (int64_t k = 0; k < items % groups; ++k) ++sizes[k];
  return sizes;
}

std::vector<int32_t> contiguous_channel_groups(int64_t channels, int64_t groups) {
  const std::vector<int64_t> sizes = balanced_group_sizes(channels, groups);
  std::vector<int32_t> map;
  map.reserve(channels);
  for (int64_t k = 0; k < groups; ++k) map.insert(map.end(), sizes[k], static_cast<int32_t>(k));
  return map;
}

std::vector<int32_t> range_permuted_channel_groups(std::span<const float> channel_range,
                                                   int64_t groups) {
  const int64_t channels = static_cast<int64_t>(channel_range.size());
  for (int64_t c = 0; c < channels; ++c)
    if (!std::isfinite(channel_range[c]) || channel_range[c] < 0.f)
      fail("PEG permutation: channel {} has range {}; ranges must be finite and >= 0", c,
           channel_range[c]);
  const std::vector<int32_t> slot_group = contiguous_channel_groups(channels, groups);
  std::vector<int32_t> order(channels);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return channel_range[a] != channel_range[b] ? channel_range[a] < channel_range[b] : a < b;
  });
  std::vector<int32_t> map(channels);
  for (int64_t i = 0; i < channels; ++i) map[order[i]] = slot_group[i];
  return map;
}

}  // namespace tquant
