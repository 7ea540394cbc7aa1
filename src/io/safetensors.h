#pragma once
// safetensors reading (memory-mapped, fully validated) and writing (atomic).
// Format: 8-byte little-endian header length N, N bytes of JSON header, then the data area.
// Every error names the file, the tensor and what is wrong.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"

namespace tquant {

enum class DType { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

const char* dtype_name(DType dtype);
size_t dtype_size(DType dtype);
bool parse_dtype(const std::string& name, DType* out);

struct TensorInfo {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0;  // offsets relative to the data area, as in the header
  uint64_t end = 0;
};

class SafetensorsFile {
 public:
  // Maps and validates the whole header; throws tquant::Error.
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in data-offset order
  const TensorInfo* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::span<const std::byte> raw(const TensorInfo& info) const;

  // The tensor as float32. An aligned F32 tensor is a zero-copy, copy-on-write mapping of its
  // own: writes to it never reach the file, nor any other tensor loaded from this file (each
  // call maps afresh, so reloading gives the pristine weights back). Misaligned or small F32
  // tensors are copied; F16/BF16/F64 are converted. NaN or Inf is an error naming the file, the
  // tensor and the first bad index. Integer, bool and F8 dtypes are refused (use raw()).
  Tensor load_f32(const std::string& name) const;

 private:
  std::filesystem::path path_;
  int fd_ = -1;                    // kept open: load_f32 maps each F32 tensor privately
  std::shared_ptr<void> mapping_;  // the whole file, read-only; backs raw()
  const std::byte* base_ = nullptr;
  uint64_t file_size_ = 0;
  uint64_t data_offset_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// All the weights of a model folder: model.safetensors, or the shards named by
// model.safetensors.index.json. Pickle checkpoints (*.bin, *.pt, *.pth, *.ckpt) are refused.
class Checkpoint {
 public:
  static Checkpoint open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  const std::vector<std::shared_ptr<SafetensorsFile>>& files() const { return files_; }

  // Tied weights are stored once; safetensors records the dropped name in `__metadata__` as
  // {"model.embed_tokens.weight": "lm_head.weight"}. Such aliases (a metadata key that is not a
  // stored tensor, whose value is one) count as tensors here: has/load_f32/info/names accept
  // them, and stored_name() tells which stored tensor backs a name (itself if not an alias).
  bool has(const std::string& name) const;
  Tensor load_f32(const std::string& name) const;  // error naming the tensor if missing
  std::vector<std::string> names() const;          // sorted, aliases included
  const TensorInfo& info(const std::string& name) const;  // of the stored tensor
  const std::string& stored_name(const std::string& name) const;
  // The `__metadata__` of the first file (safetensors aliases such as tied weights live there).
  const std::map<std::string, std::string>& metadata() const;

 private:
  std::filesystem::path dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> owner_;  // tensor name -> index into files_
  std::map<std::string, std::string> aliases_;  // alias -> stored tensor name

  void find_aliases();
  const SafetensorsFile& file_of(const std::string& stored) const;
};

// Data for one tensor to write.
struct TensorToWrite {
  std::string name;
  DType dtype;
  Shape shape;
  std::vector<std::byte> bytes;  // exactly numel * dtype_size(dtype)
};
TensorToWrite f32_tensor(const std::string& name, const Tensor& t);
// Narrowed with round-to-nearest-even (see io/half.h).
TensorToWrite f16_tensor(const std::string& name, const Tensor& t);
TensorToWrite bf16_tensor(const std::string& name, const Tensor& t);

// Writes a safetensors file atomically. Tensors are laid out contiguously in the given order
// after a header padded with spaces to a multiple of 8 bytes; put wider dtypes first (as
// Hugging Face does) to keep every tensor aligned for zero-copy loading.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace tquant
