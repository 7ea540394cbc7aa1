#include "quant/grouping.h"

#include <algorithm>
#include <string>

#include "core/error.h"

namespace tquant {

namespace {
struct NamedGranularity {
  Granularity g;
  const char* name;
};
constexpr NamedGranularity kNames[] = {
    {Granularity::PerTensor, "per_tensor"},
    {Granularity::PerChannel, "per_channel"},
    {Granularity::PerGroup, "per_group"},
    {Granularity::PerEmbeddingGroup, "per_embedding_group"},
    {Granularity::PerToken, "per_token"},
};
}  // namespace

const char* granularity_name(Granularity g) {
  for (const auto& n : kNames)
    if (n.g == g) return n.name;
  fail("granularity: unknown enum value {}", static_cast<int>(g));
}

Granularity parse_granularity(std::string_view name) {
  std::string valid;
  for (const auto& n : kNames) {
    if (name == n.name) return n.g;
    valid += valid.empty() ? "" : ", ";
    valid += n.name;
  }
  fail("granularity '{}' is unknown; valid: {}", name, valid);
}

Grouping per_tensor() { return {}; }

Grouping per_channel(int axis) {
  if (axis != 0 && axis != 1) fail("per_channel: channel_axis {} must be 0 (rows) or 1 (columns)", axis);
  Grouping g;
  g.granularity = Granularity::PerChannel;
  g.channel_axis = axis;
  return g;
}

Grouping per_group(int64_t group_size) {
  if (group_size <= 0) fail("per_group: group_size {} must be positive", group_size);
  Grouping g;
  g.granularity = Granularity::PerGroup;
  g.group_size = group_size;
  return g;
}

Grouping per_embedding_group(std::vector<int32_t> channel_group) {
  channel_group_count(channel_group, "per_embedding_group");
  Grouping g;
  g.granularity = Granularity::PerEmbeddingGroup;
  g.channel_group = std::move(channel_group);
  return g;
}

Grouping per_token() {
  Grouping g;
  g.granularity = Granularity::PerToken;
  return g;
}

int64_t channel_group_count(const std::vector<int32_t>& channel_group, std::string_view where) {
  if (channel_group.empty()) fail("{}: channel_group is empty", where);
  int64_t k = 0;
  for (size_t c = 0; c < channel_group.size(); ++c) {
    if (channel_group[c] < 0)
      fail("{}: channel_group[{}] = {} is negative", where, c, channel_group[c]);
    k = std::max<int64_t>(k, channel_group[c] + 1);
  }
  std::vector<char> used(k, 0);
  for (int32_t id : channel_group) used[id] = 1;
  for (int64_t i = 0; i < k; ++i)
    if (!used[i]) fail("{}: channel_group uses ids up to {} but group {} has no channel", where, k - 1, i);
  return k;
}

bool groups_within_rows(const Grouping& g) {
  return (g.granularity == Granularity::PerChannel && g.channel_axis == 0) ||
         g.granularity == Granularity::PerGroup;
}

int64_t group_count(const Grouping& g, int64_t rows, int64_t cols, std::string_view where) {
  if (rows < 0 || cols < 0) fail("{}: negative shape [{}, {}]", where, rows, cols);
  switch (g.granularity) {
    case Granularity::PerTensor:
      return 1;
    case Granularity::PerChannel:
      if (g.channel_axis == 0) return rows;
      if (g.channel_axis == 1) return cols;
      fail("{}: per_channel channel_axis {} must be 0 (rows) or 1 (columns)", where, g.channel_axis);
    case Granularity::PerGroup:
      if (g.group_size <= 0) fail("{}: per_group group_size {} must be positive", where, g.group_size);
      if (cols % g.group_size != 0)
        fail("{}: per_group group_size {} does not divide the {} columns", where, g.group_size, cols);
      return rows * (cols / g.group_size);
    case Granularity::PerEmbeddingGroup:
      if (static_cast<int64_t>(g.channel_group.size()) != cols)
        fail("{}: per_embedding_group map has {} channels but the tensor has {} columns", where,
             g.channel_group.size(), cols);
      return channel_group_count(g.channel_group, where);
    case Granularity::PerToken:
      return 0;
  }
  fail("{}: unknown granularity {}", where, static_cast<int>(g.granularity));
}

}  // namespace tquant
