#include "export/gguf_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>

#include "core/error.h"

namespace tquant::gguf {

namespace fs = std::filesystem;

namespace {

constexpr int kMaxArrayDepth = 4;

// Bounds-checked reading of the header; `what` names the field for the error message.
class Cursor {
 public:
  Cursor(const uint8_t* base, uint64_t size, std::string file) : base_(base), size_(size), file_(std::move(file)) {}

  template <class T>
  T scalar(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string string(std::string_view what) {
    const uint64_t n = scalar<uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(base_ + pos_), n);
    pos_ += n;
    return s;
  }
  void need(uint64_t n, std::string_view what) const {
    if (n > size_ - pos_)
      fail("{}: the file ends inside {} (needs {} bytes at offset {}, {} left); truncated or not a GGUF file", file_,
           what, n, pos_, size_ - pos_);
  }
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }

 private:
  const uint8_t* base_;
  uint64_t size_;
  std::string file_;
  uint64_t pos_ = 0;
};

uint64_t min_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: case ValueType::STRING: return 8;
    case ValueType::ARRAY: return 12;
  }
  return 1;
}

Value read_value(Cursor& c, ValueType t, const std::string& what, int depth) {
  switch (t) {
    case ValueType::UINT8: return Value::u8(c.scalar<uint8_t>(what));
    case ValueType::INT8: return Value::i8(c.scalar<int8_t>(what));
    case ValueType::UINT16: return Value::u16(c.scalar<uint16_t>(what));
    case ValueType::INT16: return Value::i16(c.scalar<int16_t>(what));
    case ValueType::UINT32: return Value::u32(c.scalar<uint32_t>(what));
    case ValueType::INT32: return Value::i32(c.scalar<int32_t>(what));
    case ValueType::UINT64: return Value::u64(c.scalar<uint64_t>(what));
    case ValueType::INT64: return Value::i64(c.scalar<int64_t>(what));
    case ValueType::FLOAT32: return Value::f32(c.scalar<float>(what));
    case ValueType::FLOAT64: return Value::f64(c.scalar<double>(what));
    case ValueType::BOOL: {
      const uint8_t b = c.scalar<uint8_t>(what);
      if (b > 1) fail("{}: a bool must be 0 or 1, found {}", what, b);
      return Value::boolean(b == 1);
    }
    case ValueType::STRING: return Value::string(c.string(what));
    case ValueType::ARRAY: {
      if (depth >= kMaxArrayDepth) fail("{}: arrays nested deeper than {}", what, kMaxArrayDepth);
      const uint32_t et = c.scalar<uint32_t>(what);
      if (!is_valid_value_type(et)) fail("{}: unknown array element type {}", what, et);
      const uint64_t n = c.scalar<uint64_t>(what);
      const auto element = static_cast<ValueType>(et);
      if (n > c.left() / min_size(element))
        fail("{}: an array of {} {} values cannot fit in the {} bytes left", what, n, value_type_name(element), c.left());
      std::vector<Value> items;
      items.reserve(n);
      for (uint64_t i = 0; i < n; ++i) items.push_back(read_value(c, element, what, depth + 1));
      return Value::array(element, std::move(items));
    }
  }
  fail("{}: unknown value type {}", what, static_cast<uint32_t>(t));
}

}  // namespace

bool is_gguf_path(const fs::path& path) {
  if (path.extension() == ".gguf") return true;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  f.read(magic, 4);
  return f && std::memcmp(magic, "GGUF", 4) == 0;
}

GgufFile::GgufFile(const fs::path& path) : path_(path) {
  const std::string file = path.string();
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail("{}: is a folder, not a GGUF file", file);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open: {}", file, std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail("{}: cannot stat: {}", file, std::strerror(errno));
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ < 24) {
    ::close(fd);
    fail("{}: {} bytes is too short for a GGUF header (24 bytes)", file, size_);
  }
  void* addr = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (addr == MAP_FAILED) fail("{}: cannot map: {}", file, std::strerror(errno));
  const uint64_t length = size_;
  mapping_ = std::shared_ptr<void>(addr, [length](void* p) { ::munmap(p, length); });
  base_ = static_cast<const uint8_t*>(addr);

  Cursor c(base_, size_, file);
  const uint32_t magic = c.scalar<uint32_t>("the magic");
  if (magic != kMagic) {
    if (magic == 0x47475546) fail("{}: a big-endian GGUF file; tquant reads little-endian files only", file);
    fail("{}: not a GGUF file (the first 4 bytes are not \"GGUF\")", file);
  }
  version_ = c.scalar<uint32_t>("the version");
  if (version_ != 2 && version_ != 3)
    fail("{}: GGUF version {} is not supported (tquant reads versions 2 and 3)", file, version_);
  const uint64_t n_tensors = c.scalar<uint64_t>("the tensor count");
  const uint64_t n_kv = c.scalar<uint64_t>("the metadata count");
  // Each key-value pair takes at least 12 bytes, each tensor info at least 28.
  if (n_kv > c.left() / 12 || n_tensors > (c.left() - 12 * n_kv) / 28)
    fail("{}: {} metadata pairs and {} tensors cannot fit in the {} bytes left; truncated or not a GGUF file", file,
         n_kv, n_tensors, c.left());

  std::set<std::string> keys;
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.string(fmt::format("{}: the key of metadata pair {}", file, i));
    const std::string what = where(key);
    if (!keys.insert(key).second) fail("{}: the key appears twice", what);
    const uint32_t t = c.scalar<uint32_t>(what);
    if (!is_valid_value_type(t)) fail("{}: unknown value type {}", what, t);
    metadata_.emplace_back(std::move(key), read_value(c, static_cast<ValueType>(t), what, 0));
  }
  if (const Value* a = find("general.alignment")) {
    if (a->type() != ValueType::UINT32) fail("{}: must be a uint32, found a {}", where("general.alignment"), value_type_name(a->type()));
    alignment_ = a->raw_integer();
    if (alignment_ == 0 || alignment_ % 8 != 0)
      fail("{}: {} is not a non-zero multiple of 8", where("general.alignment"), alignment_);
  }

  std::set<std::string> names;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorEntry t;
    t.name = c.string(fmt::format("{}: the name of tensor {}", file, i));
    const std::string what = fmt::format("{}: tensor \"{}\"", file, t.name);
    if (!names.insert(t.name).second) fail("{} appears twice", what);
    const uint32_t nd = c.scalar<uint32_t>(what);
    if (nd == 0 || nd > 4) fail("{} has {} dimensions (GGUF allows 1 to 4)", what, nd);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      const uint64_t n = c.scalar<uint64_t>(what);
      if (n == 0 || n > (uint64_t{1} << 40) || numel > (uint64_t{1} << 48) / n)
        fail("{}: dimension {} = {} is out of range", what, d, n);
      numel *= n;
      t.ne.push_back(n);
    }
    const uint32_t type = c.scalar<uint32_t>(what);
    const auto tt = type_from_id(type);
    if (!tt) fail("{} has ggml type {}, which tquant does not read (it reads f32, f16, q4_0, q4_1, q8_0)", what, type);
    t.type = *tt;
    t.offset = c.scalar<uint64_t>(what);
    const int64_t rb = row_bytes(t.type, static_cast<int64_t>(t.ne[0]), what);
    t.bytes = static_cast<uint64_t>(rb) * (numel / t.ne[0]);
    for (auto d = t.ne.rbegin(); d != t.ne.rend(); ++d) t.shape.push_back(static_cast<int64_t>(*d));
    tensors_.push_back(std::move(t));
  }
  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (data_offset_ > size_) fail("{}: the data section would start past the end of the file", file);
  const uint64_t data_size = size_ - data_offset_;
  std::vector<const TensorEntry*> by_offset;
  for (const TensorEntry& t : tensors_) {
    if (t.offset % alignment_ != 0)
      fail("{}: tensor \"{}\": data offset {} is not a multiple of the alignment {}", file, t.name, t.offset, alignment_);
    if (t.offset > data_size || t.bytes > data_size - t.offset)
      fail("{}: tensor \"{}\": its {} bytes at data offset {} run past the end of the file ({} data bytes)", file,
           t.name, t.bytes, t.offset, data_size);
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i - 1]->offset + by_offset[i - 1]->bytes > by_offset[i]->offset)
      fail("{}: the data of tensors \"{}\" and \"{}\" overlap", file, by_offset[i - 1]->name, by_offset[i]->name);
}

GgufFile::~GgufFile() = default;

std::string GgufFile::where(std::string_view key) const { return fmt::format("{}: {}", path_.string(), key); }

const Value* GgufFile::find(std::string_view key) const {
  for (const auto& [k, v] : metadata_)
    if (k == key) return &v;
  return nullptr;
}

const Value& GgufFile::at(std::string_view key) const {
  const Value* v = find(key);
  if (!v) fail("{}: the metadata key {} is missing", path_.string(), key);
  return *v;
}

const TensorEntry* GgufFile::find_tensor(std::string_view name) const {
  for (const TensorEntry& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const TensorEntry& GgufFile::tensor(std::string_view name) const {
  const TensorEntry* t = find_tensor(name);
  if (!t) fail("{}: no tensor \"{}\"", path_.string(), name);
  return *t;
}

std::span<const uint8_t> GgufFile::data(const TensorEntry& t) const {
  return {base_ + data_offset_ + t.offset, static_cast<size_t>(t.bytes)};
}

Tensor GgufFile::load_f32(std::string_view name) const {
  const TensorEntry& t = tensor(name);
  Tensor out = Tensor::uninitialized(t.shape);
  const int64_t cols = static_cast<int64_t>(t.ne[0]), rows = out.numel() / cols;
  const int64_t rb = row_bytes(t.type, cols, name);
  const uint8_t* src = data(t).data();
  for (int64_t r = 0; r < rows; ++r) dequantize_row(t.type, src + r * rb, cols, out.data() + r * cols);
  for (int64_t i = 0; i < out.numel(); ++i)
    if (!std::isfinite(out[i]))
      fail("{}: tensor \"{}\" has a non-finite value ({}) at row {}, column {}", path_.string(), t.name, out[i], i / cols,
           i % cols);
  return out;
}

}  // namespace tquant::gguf
