#pragma once
// Writes a GGUF file (version 3): header, metadata, tensor infos, then the tensor data, each
// tensor at an offset that is a multiple of general.alignment (32 unless the metadata says
// otherwise), the gaps filled with zero bytes. The file is written atomically (temporary name
// beside it, renamed into place when complete), so a failure leaves the target untouched.
#include <filesystem>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "export/gguf_format.h"

namespace tquant::gguf {

struct TensorToWrite {
  std::string name;            // at most 64 bytes
  TensorType type = TensorType::F32;
  Shape shape;                 // row-major, outermost first ([out, in] for a linear); GGUF stores it reversed
  std::vector<uint8_t> data;   // rows of row_bytes(type, shape.back()) bytes each
};

// Fails, naming the file and the key or tensor, on a duplicate or malformed key, a duplicate or
// too long tensor name, a shape whose rows do not fill whole blocks, or data of the wrong size.
void write_gguf(const std::filesystem::path& path, const Metadata& metadata, const std::vector<TensorToWrite>& tensors);

}  // namespace tquant::gguf
