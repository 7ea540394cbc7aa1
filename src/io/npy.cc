#include "io/npy.h"

#include <cstring>
#include <fstream>
#include <regex>

#include "core/atomic_file.h"
#include "core/error.h"

namespace tquant {

void write_npy(const std::filesystem::path& path, const Tensor& t) {
  std::string shape = "(";
  for (int i = 0; i < t.ndim(); ++i) shape += std::to_string(t.dim(i)) + (t.ndim() == 1 ? ",)" : i + 1 < t.ndim() ? ", " : ")");
  if (t.ndim() == 0) shape = "()";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic (6) + version (2) + length (2) + header + '\n' must be a multiple of 64.
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  write_file_atomically(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out.write("\x93NUMPY\x01\x00", 8);
    const uint16_t len = static_cast<uint16_t>(header.size());
    out.write(reinterpret_cast<const char*>(&len), 2);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(t.data()), static_cast<std::streamsize>(sizeof(float) * t.numel()));
    out.close();
    if (!out) fail("{}: write failed", path.string());
  });
}

Tensor read_npy(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path.string());
  char magic[8];
  uint16_t len = 0;
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY\x01", 7) != 0 || !in.read(reinterpret_cast<char*>(&len), 2))
    fail("{}: not a NumPy .npy file of format 1.0", path.string());
  std::string header(len, '\0');
  if (!in.read(header.data(), len)) fail("{}: truncated .npy header", path.string());
  if (header.find("'descr': '<f4'") == std::string::npos) fail("{}: only little-endian float32 .npy is supported", path.string());
  if (header.find("'fortran_order': False") == std::string::npos) fail("{}: Fortran-ordered .npy is not supported", path.string());
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'shape': \\(([0-9, ]*)\\)"))) fail("{}: .npy header has no shape", path.string());
  Shape shape;
  const std::string dims = m[1];
  const std::regex number("[0-9]+");
  for (std::sregex_iterator it(dims.begin(), dims.end(), number), end; it != end; ++it)
    shape.push_back(std::stoll(it->str()));
  Tensor t(shape);
  if (!in.read(reinterpret_cast<char*>(t.data()), static_cast<std::streamsize>(sizeof(float) * t.numel())))
    fail("{}: .npy data is shorter than its shape {}", path.string(), shape_str(shape));
  return t;
}

}  // namespace tquant
