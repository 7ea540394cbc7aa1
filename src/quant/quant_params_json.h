#pragma once
// QuantParams <-> JSON, so calibrated parameters can be kept in a file and reloaded. Scales and
// zero points round-trip exactly (a float widened to double prints and parses back unchanged).
//
// {"bits": 8, "symmetric": false, "granularity": "per_embedding_group",
//  "channel_group": [0, 0, 1, ...], "scale": [...], "zero_point": [...]}
// "channel_axis" appears only for per_channel, "group_size" only for per_group, "channel_group"
// only for per_embedding_group. Unknown or misplaced keys are errors (they are usually typos).
#include <nlohmann/json_fwd.hpp>

#include <string_view>

#include "quant/quant_params.h"

namespace tquant {

void to_json(nlohmann::json& j, const QuantParams& p);
// Validates like validate(); errors name the offending field ("quant params: field 'scale' ...").
void from_json(const nlohmann::json& j, QuantParams& p);
// The same, with errors prefixed by `where` (e.g. the quantization point and the file).
QuantParams quant_params_from_json(const nlohmann::json& j, std::string_view where);

}  // namespace tquant
