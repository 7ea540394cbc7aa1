#include "quant/quant_params_json.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "core/error.h"

namespace tquant {

using nlohmann::json;

void to_json(json& j, const QuantParams& p) {
  j = json::object();
  j["bits"] = p.bits;
  j["symmetric"] = p.symmetric;
  j["granularity"] = granularity_name(p.grouping.granularity);
  switch (p.grouping.granularity) {
    case Granularity::PerChannel:
      j["channel_axis"] = p.grouping.channel_axis;
      break;
    case Granularity::PerGroup:
      j["group_size"] = p.grouping.group_size;
      break;
    case Granularity::PerEmbeddingGroup:
      j["channel_group"] = p.grouping.channel_group;
      break;
    default:
      break;
  }
  j["scale"] = p.scale;
  j["zero_point"] = p.zero_point;
}

namespace {

const json& field(const json& j, const char* key, std::string_view where) {
  const auto it = j.find(key);
  if (it == j.end()) fail("{}: field '{}' is missing", where, key);
  return *it;
}

int64_t integer_field(const json& j, const char* key, std::string_view where) {
  const json& v = field(j, key, where);
  if (!v.is_number_integer()) fail("{}: field '{}' must be an integer, got {}", where, key, v.dump());
  return v.get<int64_t>();
}

std::vector<float> float_array(const json& j, const char* key, std::string_view where) {
  const json& v = field(j, key, where);
  if (!v.is_array()) fail("{}: field '{}' must be an array of numbers", where, key);
  std::vector<float> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number()) fail("{}: field '{}'[{}] = {} is not a number", where, key, i, v[i].dump());
    const double d = v[i].get<double>();
    if (std::fabs(d) > std::numeric_limits<float>::max())
      fail("{}: field '{}'[{}] = {} does not fit a float", where, key, i, d);
    out.push_back(static_cast<float>(d));
  }
  return out;
}

}  // namespace

QuantParams quant_params_from_json(const json& j, std::string_view where) {
  if (!j.is_object()) fail("{}: quantization parameters must be a JSON object, got {}", where, j.type_name());
  QuantParams p;
  const int64_t bits = integer_field(j, "bits", where);
  if (bits < kMinBits || bits > kMaxBits)
    fail("{}: field 'bits' = {} is not supported (use {}..{})", where, bits, kMinBits, kMaxBits);
  p.bits = static_cast<int>(bits);
  const json& sym = field(j, "symmetric", where);
  if (!sym.is_boolean()) fail("{}: field 'symmetric' must be true or false, got {}", where, sym.dump());
  p.symmetric = sym.get<bool>();
  const json& gran = field(j, "granularity", where);
  if (!gran.is_string()) fail("{}: field 'granularity' must be a string, got {}", where, gran.dump());
  try {
    p.grouping.granularity = parse_granularity(gran.get<std::string>());
  } catch (const Error& e) {
    fail("{}: field 'granularity': {}", where, e.what());
  }

  std::set<std::string> allowed = {"bits", "symmetric", "granularity", "scale", "zero_point"};
  switch (p.grouping.granularity) {
    case Granularity::PerChannel: {
      allowed.insert("channel_axis");
      const int64_t axis = integer_field(j, "channel_axis", where);
      if (axis != 0 && axis != 1)
        fail("{}: field 'channel_axis' = {} must be 0 (rows) or 1 (columns)", where, axis);
      p.grouping.channel_axis = static_cast<int>(axis);
      break;
    }
    case Granularity::PerGroup: {
      allowed.insert("group_size");
      p.grouping.group_size = integer_field(j, "group_size", where);
      if (p.grouping.group_size <= 0)
        fail("{}: field 'group_size' = {} must be positive", where, p.grouping.group_size);
      break;
    }
    case Granularity::PerEmbeddingGroup: {
      allowed.insert("channel_group");
      const json& m = field(j, "channel_group", where);
      if (!m.is_array()) fail("{}: field 'channel_group' must be an array of group ids", where);
      for (size_t i = 0; i < m.size(); ++i) {
        if (!m[i].is_number_integer() || m[i].get<int64_t>() < 0 ||
            m[i].get<int64_t>() > std::numeric_limits<int32_t>::max())
          fail("{}: field 'channel_group'[{}] = {} is not a group id", where, i, m[i].dump());
        p.grouping.channel_group.push_back(m[i].get<int32_t>());
      }
      channel_group_count(p.grouping.channel_group, fmt::format("{}: field 'channel_group'", where));
      break;
    }
    default:
      break;
  }
  for (const auto& [key, value] : j.items())
    if (!allowed.count(key))
      fail("{}: field '{}' is not allowed for {} parameters", where, key,
           granularity_name(p.grouping.granularity));

  p.scale = float_array(j, "scale", where);
  p.zero_point = float_array(j, "zero_point", where);
  validate(p, where);  // its messages name scale[i] / zero_point[i], the JSON fields
  return p;
}

void from_json(const json& j, QuantParams& p) { p = quant_params_from_json(j, "quant params"); }

}  // namespace tquant
