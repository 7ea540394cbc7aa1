// SafetensorsFile::load_f32: every float dtype to a float32 Tensor, refusing NaN and Inf.
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "io/half.h"
#include "io/safetensors.h"

namespace tquant {

namespace {

// Below a page a private mapping costs more than the copy, and every mapping counts against
// vm.max_map_count (65530 by default), which a model with many small norm weights could reach.
constexpr uint64_t kMinMappedBytes = 4096;

template <class T>
T read_le(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

[[noreturn]] void fail_non_finite(const SafetensorsFile& file, const TensorInfo& info,
                                  int64_t index, double value) {
  const char* what = std::isnan(value) ? "NaN" : (value > 0 ? "+Inf" : "-Inf");
  fail("{}: tensor \"{}\" ({} {}) holds {} at flat index {}; refusing non-finite weights (the "
       "checkpoint is corrupt or was saved from a diverged run)",
       file.path().string(), info.name, dtype_name(info.dtype), shape_str(info.shape), what,
       index);
}

// First index whose float32 exponent is all ones (NaN or Inf), or -1. Branch-free blocks keep
// the common all-finite case vectorised.
int64_t first_non_finite(const float* data, int64_t n) {
  constexpr int64_t kBlock = 1024;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t stop = std::min(n, start + kBlock);
    uint32_t any = 0;
    for (int64_t i = start; i < stop; ++i) {
      const uint32_t bits = std::bit_cast<uint32_t>(data[i]);
      any |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
    }
    if (any)
      for (int64_t i = start; i < stop; ++i)
        if (!std::isfinite(data[i])) return i;
  }
  return -1;
}

// A copy-on-write mapping of just this tensor, so in-place edits stay private to this Tensor.
Tensor map_f32(int fd, uint64_t file_offset, const TensorInfo& info, const std::string& file) {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t map_start = file_offset / page * page;
  const size_t length = file_offset + (info.end - info.begin) - map_start;
  void* addr = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd,
                      static_cast<off_t>(map_start));
  if (addr == MAP_FAILED)
    fail("{}: tensor \"{}\": cannot map: {}", file, info.name, std::strerror(errno));
  std::shared_ptr<void> keepalive(addr, [length](void* p) { ::munmap(p, length); });
  float* data = reinterpret_cast<float*>(static_cast<std::byte*>(addr) + (file_offset - map_start));
  return Tensor::view(data, info.shape, std::move(keepalive));
}

}  // namespace

Tensor SafetensorsFile::load_f32(const std::string& name) const {
  const TensorInfo* found = find(name);
  if (!found)
    fail("{}: no tensor \"{}\" (the file has {} tensors)", path_.string(), name, tensors_.size());
  const TensorInfo& info = *found;
  const std::span<const std::byte> bytes = raw(info);
  const int64_t n = numel_of(info.shape);

  switch (info.dtype) {
    case DType::F32: {
      const uint64_t file_offset = data_offset_ + info.begin;
      Tensor t;
      if (file_offset % alignof(float) == 0 && bytes.size() >= kMinMappedBytes) {
        // A file replaced or truncated after opening would turn page faults into SIGBUS.
        struct stat st {};
        if (::fstat(fd_, &st) != 0 || static_cast<uint64_t>(st.st_size) < file_size_)
          fail("{}: the file shrank after it was opened; reopen it", path_.string());
        t = map_f32(fd_, file_offset, info, path_.string());
      } else {
        t = Tensor(info.shape);
        if (n > 0) std::memcpy(t.data(), bytes.data(), bytes.size());
      }
      if (const int64_t bad = first_non_finite(t.data(), n); bad >= 0)
        fail_non_finite(*this, info, bad, t[bad]);
      return t;
    }
    case DType::F16:
    case DType::BF16: {
      Tensor t(info.shape);
      const bool is_f16 = info.dtype == DType::F16;
      // Exponent all ones is NaN or Inf in both formats.
      const uint16_t exp_mask = is_f16 ? 0x7c00 : 0x7f80;
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = read_le<uint16_t>(bytes.data() + 2 * i);
        t[i] = is_f16 ? f16_to_f32(h) : bf16_to_f32(h);
        if ((h & exp_mask) == exp_mask) fail_non_finite(*this, info, i, t[i]);
      }
      return t;
    }
    case DType::F64: {
      Tensor t(info.shape);
      for (int64_t i = 0; i < n; ++i) {
        const double v = read_le<double>(bytes.data() + 8 * i);
        if (!std::isfinite(v)) fail_non_finite(*this, info, i, v);
        t[i] = static_cast<float>(v);  // rounds to nearest even
        if (std::isinf(t[i]))
          fail("{}: tensor \"{}\" (F64 {}) holds {} at flat index {}, beyond the float32 range",
               path_.string(), info.name, shape_str(info.shape), v, i);
      }
      return t;
    }
    default:
      fail("{}: tensor \"{}\" has dtype {}, which load_f32 does not convert (it reads F32, F16, "
           "BF16 and F64); read integer, bool and F8 tensors with raw()",
           path_.string(), info.name, dtype_name(info.dtype));
  }
}

}  // namespace tquant
