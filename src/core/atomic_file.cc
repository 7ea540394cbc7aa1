#include "core/atomic_file.h"

#include <unistd.h>

#include <fstream>
#include <random>

#include "core/error.h"

namespace tquant {
namespace fs = std::filesystem;

namespace {

fs::path temporary_beside(const fs::path& target) {
  std::random_device rd;
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  return parent / fmt::format(".{}.tmp-{}-{:08x}", target.filename().string(), getpid(), rd());
}

void ensure_parent(const fs::path& target) {
  if (target.has_parent_path() && !fs::exists(target.parent_path())) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) fail("{}: cannot create the folder {}: {}", target.string(),
                 target.parent_path().string(), ec.message());
  }
}

}  // namespace

void write_file_atomically(const fs::path& target,
                           const std::function<void(const fs::path&)>& write) {
  ensure_parent(target);
  const fs::path tmp = temporary_beside(target);
  try {
    write(tmp);
    std::error_code ec;
    fs::rename(tmp, target, ec);
    if (ec) fail("{}: cannot move the finished file into place: {}", target.string(), ec.message());
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
}

void write_text_atomically(const fs::path& target, const std::string& text) {
  write_file_atomically(target, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) fail("{}: write failed", target.string());
  });
}

void write_directory_atomically(const fs::path& target,
                                const std::function<void(const fs::path&)>& write) {
  ensure_parent(target);
  if (fs::exists(target) && !fs::is_directory(target))
    fail("{}: exists and is not a folder", target.string());
  const fs::path tmp = temporary_beside(target);
  try {
    fs::create_directory(tmp);
    write(tmp);
    std::error_code ec;
    if (fs::exists(target)) {
      const fs::path old = temporary_beside(target);
      fs::rename(target, old, ec);
      if (ec) fail("{}: cannot replace the existing folder: {}", target.string(), ec.message());
      fs::rename(tmp, target, ec);
      if (ec) fail("{}: cannot move the finished folder into place: {}", target.string(), ec.message());
      fs::remove_all(old, ec);
    } else {
      fs::rename(tmp, target, ec);
      if (ec) fail("{}: cannot move the finished folder into place: {}", target.string(), ec.message());
    }
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw;
  }
}

}  // namespace tquant
