#pragma once
// Reads a GGUF file (versions 2 and 3; little-endian): the metadata and the tensor infos are
// parsed and validated up front, the tensor data is memory-mapped. Every error names the file
// and the key or tensor. Tensors of types other than F32, F16, Q4_0, Q4_1 and Q8_0 are refused.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "export/gguf_format.h"

namespace tquant::gguf {

struct TensorEntry {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<uint64_t> ne;  // GGUF order: ne[0] is the row length
  Shape shape;               // row-major, outermost first (ne reversed)
  uint64_t offset = 0;       // relative to the data section, as stored
  uint64_t bytes = 0;
};

// True for a path that names a GGUF file: a ".gguf" extension, or a regular file starting with
// the GGUF magic. Model::load and Tokenizer::from_dir use it to accept a .gguf path.
bool is_gguf_path(const std::filesystem::path& path);

class GgufFile {
 public:
  explicit GgufFile(const std::filesystem::path& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the data section in the file

  const Metadata& metadata() const { return metadata_; }
  const Value* find(std::string_view key) const;  // nullptr when absent
  const Value& at(std::string_view key) const;    // error naming the file and the key when absent
  // "FILE: KEY", the prefix for errors about a value.
  std::string where(std::string_view key) const;

  const std::vector<TensorEntry>& tensors() const { return tensors_; }
  const TensorEntry* find_tensor(std::string_view name) const;
  const TensorEntry& tensor(std::string_view name) const;  // error when absent
  std::span<const uint8_t> data(const TensorEntry& t) const;
  // The tensor dequantized to float32, in its row-major shape. A NaN or Inf is an error naming
  // the tensor and the index.
  Tensor load_f32(std::string_view name) const;

 private:
  std::filesystem::path path_;
  std::shared_ptr<void> mapping_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  Metadata metadata_;
  std::vector<TensorEntry> tensors_;
};

}  // namespace tquant::gguf
