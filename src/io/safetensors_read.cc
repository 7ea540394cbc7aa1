#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/safetensors_detail.h"

namespace tquant {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is read in place");

namespace {

// The reference implementation's limit: a bigger header is a corrupt length, not a model.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

}  // namespace

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : path_(path) {
  const std::string file = path.string();
  fd_ = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail("{}: cannot open: {}", file, std::strerror(errno));
  try {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) fail("{}: cannot stat: {}", file, std::strerror(errno));
    if (!S_ISREG(st.st_mode)) fail("{}: not a regular file", file);
    file_size_ = static_cast<uint64_t>(st.st_size);
    if (file_size_ < 8)
      fail("{}: too short to be a safetensors file: {} bytes, but the header length alone takes 8",
           file, file_size_);

    // Read-only: nothing may write through raw(). load_f32 makes its own writable mappings.
    void* addr = ::mmap(nullptr, file_size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (addr == MAP_FAILED) fail("{}: cannot map: {}", file, std::strerror(errno));
    const size_t length = file_size_;
    mapping_ = std::shared_ptr<void>(addr, [length](void* p) { ::munmap(p, length); });
    base_ = static_cast<const std::byte*>(addr);

    uint64_t header_len = 0;
    std::memcpy(&header_len, base_, 8);
    if (header_len > kMaxHeaderBytes)
      fail("{}: the header length {} is absurdly large (the limit is {} bytes)", file, header_len,
           kMaxHeaderBytes);
    if (header_len > file_size_ - 8)
      fail("{}: the header length {} runs past the end of the file ({} bytes, so at most {} are "
           "left for the header); the file is truncated or not safetensors",
           file, header_len, file_size_, file_size_ - 8);
    data_offset_ = 8 + header_len;

    const std::string_view text(reinterpret_cast<const char*>(base_ + 8), header_len);
    safetensors_detail::Header header =
        safetensors_detail::parse_header(text, file_size_ - data_offset_, file);
    tensors_ = std::move(header.tensors);
    metadata_ = std::move(header.metadata);
    for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (fd_ >= 0) ::close(fd_);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const std::byte> SafetensorsFile::raw(const TensorInfo& info) const {
  // Guards against a TensorInfo taken from another file.
  if (info.begin > info.end || info.end > file_size_ - data_offset_)
    fail("{}: tensor \"{}\": byte range [{}, {}] is not inside this file's data area",
         path_.string(), info.name, info.begin, info.end);
  return {base_ + data_offset_ + info.begin, static_cast<size_t>(info.end - info.begin)};
}

}  // namespace tquant
