#include <algorithm>
#include <limits>
#include <string>
#include <tuple>

#include "core/error.h"
#include "io/safetensors_detail.h"

namespace tquant::safetensors_detail {

using nlohmann::json;

namespace {

std::string offsets_str(uint64_t begin, uint64_t end) { return fmt::format("[{}, {}]", begin, end); }

std::map<std::string, std::string> parse_metadata(const json& value, const std::string& file) {
  if (!value.is_object())
    fail("{}: \"__metadata__\" must be an object mapping strings to strings, not a {}", file,
         value.type_name());
  std::map<std::string, std::string> metadata;
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string())
      fail("{}: \"__metadata__\" must map strings to strings, but \"{}\" is a {}", file, key,
           v.type_name());
    metadata[key] = v.get<std::string>();
  }
  return metadata;
}

// A JSON number that is a non-negative integer; nlohmann stores those as unsigned, negatives as
// signed, and fractions or integers beyond 2^64 as floating point.
bool read_unsigned(const json& v, uint64_t* out) {
  if (!v.is_number_unsigned()) return false;
  *out = v.get<uint64_t>();
  return true;
}

const json& field(const json& entry, const char* key, const std::string& file,
                  const std::string& name) {
  auto it = entry.find(key);
  if (it == entry.end())
    fail("{}: tensor \"{}\": the entry has no \"{}\" (it needs dtype, shape and data_offsets)",
         file, name, key);
  return *it;
}

TensorInfo parse_entry(const std::string& name, const json& entry, const std::string& file) {
  if (!entry.is_object())
    fail("{}: tensor \"{}\": the entry is a {}, not an object with dtype, shape and data_offsets",
         file, name, entry.type_name());
  TensorInfo info;
  info.name = name;

  const json& dtype = field(entry, "dtype", file, name);
  if (!dtype.is_string())
    fail("{}: tensor \"{}\": \"dtype\" is a {}, not a string", file, name, dtype.type_name());
  if (!parse_dtype(dtype.get<std::string>(), &info.dtype))
    fail("{}: tensor \"{}\": unknown dtype \"{}\" (known: {})", file, name,
         dtype.get<std::string>(), known_dtype_names());

  const json& shape = field(entry, "shape", file, name);
  if (!shape.is_array())
    fail("{}: tensor \"{}\": \"shape\" is a {}, not an array of dimensions", file, name,
         shape.type_name());
  uint64_t numel = 1;
  bool overflow = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    uint64_t d = 0;
    if (!read_unsigned(shape[i], &d)) {
      if (shape[i].is_number_integer())
        fail("{}: tensor \"{}\": negative dimension {} in shape {}", file, name,
             shape[i].get<int64_t>(), shape.dump());
      fail("{}: tensor \"{}\": shape {} has an entry ({}) that is not a non-negative integer",
           file, name, shape.dump(), shape[i].dump());
    }
    if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail("{}: tensor \"{}\": dimension {} in shape {} is too large", file, name, d,
           shape.dump());
    info.shape.push_back(static_cast<int64_t>(d));
    overflow |= __builtin_mul_overflow(numel, d, &numel);
  }
  uint64_t nbytes = 0;
  overflow |= __builtin_mul_overflow(numel, dtype_size(info.dtype), &nbytes);
  // The element count must also fit Tensor's int64 arithmetic.
  if (overflow || numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    fail("{}: tensor \"{}\": shape {} of {} overflows a 64-bit byte count", file, name,
         shape.dump(), dtype_name(info.dtype));

  const json& offsets = field(entry, "data_offsets", file, name);
  if (!offsets.is_array() || offsets.size() != 2 || !read_unsigned(offsets[0], &info.begin) ||
      !read_unsigned(offsets[1], &info.end))
    fail("{}: tensor \"{}\": \"data_offsets\" must be [begin, end] with non-negative integers, "
         "not {}", file, name, offsets.dump());
  if (info.begin > info.end)
    fail("{}: tensor \"{}\": data_offsets {} have begin > end", file, name,
         offsets_str(info.begin, info.end));
  if (info.end - info.begin != nbytes)
    fail("{}: tensor \"{}\": shape {} of {} needs {} bytes but data_offsets {} span {} bytes", file,
         name, shape_str(info.shape), dtype_name(info.dtype), nbytes,
         offsets_str(info.begin, info.end), info.end - info.begin);
  return info;
}

// The reference implementation sorts by offsets and requires each tensor to start where the
// previous one ended, the first at 0 and the last to end at the end of the file.
void check_layout(const std::vector<TensorInfo>& sorted, uint64_t data_size,
                  const std::string& file) {
  uint64_t covered = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo& t : sorted) {
    if (t.begin < covered)
      fail("{}: tensor \"{}\": data_offsets {} overlap tensor \"{}\" at {}", file, t.name,
           offsets_str(t.begin, t.end), prev->name, offsets_str(prev->begin, prev->end));
    if (t.end > data_size) {
      if (t.begin == covered)
        fail("{}: the file is truncated: tensor \"{}\" needs bytes {} of the data area, which "
             "holds only {} bytes", file, t.name, offsets_str(t.begin, t.end), data_size);
      fail("{}: tensor \"{}\": data_offsets {} lie outside the data area, which holds {} bytes",
           file, t.name, offsets_str(t.begin, t.end), data_size);
    }
    if (t.begin > covered)
      fail("{}: tensor \"{}\": data_offsets {} leave {} unused bytes after {} (tensors must be "
           "contiguous)", file, t.name, offsets_str(t.begin, t.end), t.begin - covered,
           prev ? fmt::format("tensor \"{}\"", prev->name) : "the start of the data area");
    covered = t.end;
    prev = &t;
  }
  if (covered != data_size)
    fail("{}: the last {} bytes of the data area belong to no tensor (the tensors end at {}, the "
         "data area at {})", file, data_size - covered, covered, data_size);
}

}  // namespace

Header parse_header(std::string_view json_text, uint64_t data_size, const std::string& file) {
  const json root = parse_json_unique_keys(json_text, file);
  if (!root.is_object()) fail("{}: the header is a JSON {}, not an object", file, root.type_name());
  Header header;
  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__")
      header.metadata = parse_metadata(value, file);
    else
      header.tensors.push_back(parse_entry(key, value, file));
  }
  std::sort(header.tensors.begin(), header.tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) {
              return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
            });
  check_layout(header.tensors, data_size, file);
  return header;
}

}  // namespace tquant::safetensors_detail
