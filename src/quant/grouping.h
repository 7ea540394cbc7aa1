#pragma once
// Granularity: which elements of a tensor share one (scale, zero point). Every tensor is seen as
// the 2-D view [rows, cols] (Tensor::rows()/cols()): a weight [out, in] has one row per output
// channel; an activation [B, T, C] has one row per token and one column per embedding channel.
#include <cstdint>
#include <string_view>
#include <vector>

namespace tquant {

enum class Granularity {
  PerTensor,          // one group
  PerChannel,         // channel_axis 0: one group per row (weight output channel);
                      // channel_axis 1: one group per column (activation channel, all tokens)
  PerGroup,           // group_size consecutive columns within one row (LLM weight groups)
  PerEmbeddingGroup,  // PEG: columns assigned to K groups by channel_group, over all rows
  PerToken,           // dynamic: each row's range is taken at run time; nothing is calibrated
};

const char* granularity_name(Granularity g);  // "per_tensor", "per_channel", ...
Granularity parse_granularity(std::string_view name);

struct Grouping {
  Granularity granularity = Granularity::PerTensor;
  int channel_axis = 0;                 // PerChannel only: 0 rows, 1 columns
  int64_t group_size = 0;               // PerGroup only; must divide cols (see group_count)
  std::vector<int32_t> channel_group;   // PerEmbeddingGroup only: column -> group in [0, K)
};

Grouping per_tensor();
Grouping per_channel(int axis);
Grouping per_group(int64_t group_size);
Grouping per_embedding_group(std::vector<int32_t> channel_group);
Grouping per_token();

// Number of groups K of a channel_group map, checking that its ids are 0..K-1 with every group
// non-empty (an empty group would carry a scale that nothing uses, which is always a bug).
int64_t channel_group_count(const std::vector<int32_t>& channel_group, std::string_view where);

// Number of (scale, zero point) pairs the grouping needs for a [rows, cols] tensor; fails with a
// message naming `where` when the shape does not fit. PerGroup requires cols % group_size == 0:
// a short last group would need its own code path in every packed export format, and every
// model this project targets has widths divisible by 32/64/128. PerToken is dynamic: 0.
int64_t group_count(const Grouping& g, int64_t rows, int64_t cols, std::string_view where);

// True when each group lies inside one row (per-channel on rows, per-group): such groups are
// bound to a row index, so every batch must have the same number of rows.
bool groups_within_rows(const Grouping& g);

}  // namespace tquant
