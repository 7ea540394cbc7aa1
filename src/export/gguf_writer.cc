#include "export/gguf_writer.h"

#include <cstring>
#include <fstream>
#include <set>

#include "core/error.h"
#include "core/temp_dir.h"

namespace tquant::gguf {

namespace fs = std::filesystem;

namespace {

class Out {
 public:
  explicit Out(const fs::path& path) : path_(path), f_(path, std::ios::binary | std::ios::trunc) {
    if (!f_) fail("{}: cannot create the file", path.string());
  }
  void bytes(const void* p, size_t n) {
    f_.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
    pos_ += n;
  }
  template <class T>
  void scalar(T v) {
    bytes(&v, sizeof(T));
  }
  void string(const std::string& s) {
    scalar<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    static const char zeros[256] = {};
    while (pos_ % alignment != 0) bytes(zeros, std::min<uint64_t>(alignment - pos_ % alignment, sizeof zeros));
  }
  uint64_t pos() const { return pos_; }
  void close() {
    f_.close();
    if (!f_) fail("{}: write failed (disk full?)", path_.string());
  }

 private:
  fs::path path_;
  std::ofstream f_;
  uint64_t pos_ = 0;
};

void write_value(Out& out, const Value& v) {
  switch (v.type()) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL:
      out.scalar<uint8_t>(static_cast<uint8_t>(v.raw_integer()));
      return;
    case ValueType::UINT16: case ValueType::INT16:
      out.scalar<uint16_t>(static_cast<uint16_t>(v.raw_integer()));
      return;
    case ValueType::UINT32: case ValueType::INT32:
      out.scalar<uint32_t>(static_cast<uint32_t>(v.raw_integer()));
      return;
    case ValueType::UINT64: case ValueType::INT64:
      out.scalar<uint64_t>(v.raw_integer());
      return;
    case ValueType::FLOAT32:
      out.scalar<float>(static_cast<float>(v.raw_float()));
      return;
    case ValueType::FLOAT64:
      out.scalar<double>(v.raw_float());
      return;
    case ValueType::STRING:
      out.string(v.as_string(""));
      return;
    case ValueType::ARRAY: {
      const auto& items = v.items("");
      out.scalar<uint32_t>(static_cast<uint32_t>(v.element_type()));
      out.scalar<uint64_t>(items.size());
      for (const Value& item : items) write_value(out, item);
      return;
    }
  }
}

// docs/gguf.md: ASCII, lower_snake_case segments separated by dots, at most 65535 bytes.
bool valid_key(const std::string& key) {
  if (key.empty() || key.size() > 65535 || key.front() == '.' || key.back() == '.') return false;
  for (size_t i = 0; i < key.size(); ++i) {
    const char c = key[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || (c == '.' && key[i - 1] != '.');
    if (!ok) return false;
  }
  return true;
}

}  // namespace

void write_gguf(const fs::path& path, const Metadata& metadata, const std::vector<TensorToWrite>& tensors) {
  const std::string file = path.string();
  uint64_t alignment = kDefaultAlignment;
  std::set<std::string> keys;
  for (const auto& [key, value] : metadata) {
    if (!valid_key(key)) fail("{}: metadata key \"{}\" is not lower_snake_case segments joined by dots", file, key);
    if (!keys.insert(key).second) fail("{}: metadata key \"{}\" given twice", file, key);
    if (key == "general.alignment") {
      if (value.type() != ValueType::UINT32) fail("{}: general.alignment must be a uint32", file);
      alignment = value.raw_integer();
      if (alignment == 0 || alignment % 8 != 0) fail("{}: general.alignment {} is not a multiple of 8", file, alignment);
    }
  }
  std::set<std::string> names;
  for (const TensorToWrite& t : tensors) {
    if (t.name.empty() || t.name.size() > kMaxTensorName)
      fail("{}: tensor name \"{}\" must have 1 to {} bytes", file, t.name, kMaxTensorName);
    if (!names.insert(t.name).second) fail("{}: tensor \"{}\" given twice", file, t.name);
    if (t.shape.empty() || t.shape.size() > 4) fail("{}: tensor \"{}\" has {} dimensions (GGUF: 1 to 4)", file, t.name, t.shape.size());
    for (int64_t d : t.shape)
      if (d <= 0) fail("{}: tensor \"{}\" has shape {}; every dimension must be positive", file, t.name, shape_str(t.shape));
    const int64_t rb = row_bytes(t.type, t.shape.back(), fmt::format("{}: tensor \"{}\"", file, t.name));
    const uint64_t want = static_cast<uint64_t>(rb) * static_cast<uint64_t>(numel_of(t.shape) / t.shape.back());
    if (t.data.size() != want)
      fail("{}: tensor \"{}\" ({} {}) has {} bytes of data, expected {}", file, t.name, type_name(t.type),
           shape_str(t.shape), t.data.size(), want);
  }
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail("{}: is a folder; give the path of the .gguf file to write", file);

  // Built inside a temporary folder beside the target (removed on errors and on Ctrl-C), then
  // renamed into place: the target is either the old file or the complete new one.
  TempDir tmp(TempDir::path_beside(path));
  const fs::path part = tmp.path() / path.filename();
  {
    Out out(part);
    out.scalar<uint32_t>(kMagic);
    out.scalar<uint32_t>(kVersion);
    out.scalar<uint64_t>(tensors.size());
    out.scalar<uint64_t>(metadata.size());
    for (const auto& [key, value] : metadata) {
      out.string(key);
      out.scalar<uint32_t>(static_cast<uint32_t>(value.type()));
      write_value(out, value);
    }
    uint64_t offset = 0;
    for (const TensorToWrite& t : tensors) {
      out.string(t.name);
      out.scalar<uint32_t>(static_cast<uint32_t>(t.shape.size()));
      for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) out.scalar<uint64_t>(static_cast<uint64_t>(*d));
      out.scalar<uint32_t>(static_cast<uint32_t>(t.type));
      out.scalar<uint64_t>(offset);
      offset += (t.data.size() + alignment - 1) / alignment * alignment;
    }
    out.pad_to(alignment);
    for (const TensorToWrite& t : tensors) {
      out.bytes(t.data.data(), t.data.size());
      out.pad_to(alignment);
    }
    out.close();
  }
  fs::rename(part, path, ec);
  if (ec) fail("{}: cannot move the finished file into place: {}", file, ec.message());
}

}  // namespace tquant::gguf
