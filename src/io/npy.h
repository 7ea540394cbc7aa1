#pragma once
// NumPy .npy (format 1.0, little-endian float32, C order): the interchange format for logits
// and activations, so that Python can check or plot them with one np.load.
#include <filesystem>

#include "core/tensor.h"

namespace tquant {

void write_npy(const std::filesystem::path& path, const Tensor& t);  // atomic
Tensor read_npy(const std::filesystem::path& path);

}  // namespace tquant
