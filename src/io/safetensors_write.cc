// write_safetensors and the helpers that encode a float32 Tensor for it.
#include <bit>
#include <cstring>
#include <fstream>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/half.h"
#include "io/safetensors.h"

namespace tquant {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is written from memory as is");

namespace {

template <uint16_t (*narrow)(float)>
TensorToWrite narrowed(const std::string& name, DType dtype, const Tensor& t) {
  TensorToWrite out{name, dtype, t.shape(), std::vector<std::byte>(2 * t.numel())};
  for (int64_t i = 0; i < t.numel(); ++i) {
    const uint16_t h = narrow(t[i]);
    std::memcpy(out.bytes.data() + 2 * i, &h, 2);
  }
  return out;
}

void check_tensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors) {
  std::set<std::string> names;
  for (const TensorToWrite& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__")
      fail("{}: cannot write a tensor named \"{}\"", path.string(), t.name);
    if (!names.insert(t.name).second)
      fail("{}: tensor \"{}\" is given twice", path.string(), t.name);
    for (int64_t d : t.shape)
      if (d < 0) fail("{}: tensor \"{}\": negative dimension in shape {}", path.string(), t.name,
                      shape_str(t.shape));
    const uint64_t need = static_cast<uint64_t>(numel_of(t.shape)) * dtype_size(t.dtype);
    if (t.bytes.size() != need)
      fail("{}: tensor \"{}\": {} bytes given, but shape {} of {} needs {}", path.string(), t.name,
           t.bytes.size(), shape_str(t.shape), dtype_name(t.dtype), need);
  }
}

}  // namespace

TensorToWrite f32_tensor(const std::string& name, const Tensor& t) {
  TensorToWrite out{name, DType::F32, t.shape(), std::vector<std::byte>(4 * t.numel())};
  if (t.numel() > 0) std::memcpy(out.bytes.data(), t.data(), out.bytes.size());
  return out;
}

TensorToWrite f16_tensor(const std::string& name, const Tensor& t) {
  return narrowed<f32_to_f16>(name, DType::F16, t);
}

TensorToWrite bf16_tensor(const std::string& name, const Tensor& t) {
  return narrowed<f32_to_bf16>(name, DType::BF16, t);
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  check_tensors(path, tensors);
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // e.g. a name that is not valid UTF-8
    fail("{}: cannot encode the header: {}", path.string(), e.what());
  }
  // Spaces up to a multiple of 8 keep the data area, and so every tensor of a well-ordered
  // file, 8-byte aligned; JSON ignores trailing whitespace.
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_len = text.size();

  write_file_atomically(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) fail("{}: cannot create {}", path.string(), tmp.string());
    out.write(reinterpret_cast<const char*>(&header_len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const TensorToWrite& t : tensors)
      out.write(reinterpret_cast<const char*>(t.bytes.data()),
                static_cast<std::streamsize>(t.bytes.size()));
    out.close();
    if (!out) fail("{}: write failed (disk full?)", path.string());
  });
}

}  // namespace tquant
