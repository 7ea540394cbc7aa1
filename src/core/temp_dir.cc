#include "core/temp_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "core/error.h"

namespace tquant {
namespace fs = std::filesystem;

namespace {

// The handler's view of the live temporary directories: fixed storage, no allocation, each slot
// published with a release store after its path is complete.
constexpr int kSlots = 32;
struct Slot {
  std::atomic<int> state{0};  // 0 free, 1 live
  char path[PATH_MAX];
};
Slot g_slots[kSlots];
std::mutex g_slots_mutex;  // serialises registration (never taken by the handler)
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
struct sigaction g_previous[sizeof(kSignals) / sizeof(kSignals[0])];
std::once_flag g_handlers_installed;

// Recursively deletes the contents of the directory open as `dirfd` (depth-limited), using only
// async-signal-safe calls. getdents64 goes through syscall() because readdir may allocate.
void remove_contents(int dirfd, int depth) {
  if (depth > 64) return;
  alignas(8) char buf[4096];
  for (int pass = 0; pass < 1000; ++pass) {  // entries are re-read after each batch of unlinks
    if (lseek(dirfd, 0, SEEK_SET) < 0) return;
    bool removed_any = false, saw_any = false;
    for (;;) {
      const long n = syscall(SYS_getdents64, dirfd, buf, sizeof(buf));
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        struct Dirent64 {
          uint64_t d_ino;
          int64_t d_off;
          unsigned short d_reclen;
          unsigned char d_type;
          char d_name[1];
        };
        const auto* d = reinterpret_cast<const Dirent64*>(buf + off);
        off += d->d_reclen;
        const char* name = d->d_name;
        if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
        saw_any = true;
        bool is_dir = d->d_type == DT_DIR;
        if (!is_dir) {
          if (unlinkat(dirfd, name, 0) == 0) {
            removed_any = true;
            continue;
          }
          is_dir = errno == EISDIR || errno == EPERM;  // DT_UNKNOWN on some file systems
          if (!is_dir) continue;
        }
        const int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
          remove_contents(sub, depth + 1);
          close(sub);
        }
        if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0) removed_any = true;
      }
    }
    if (!saw_any || !removed_any) return;
  }
}

void remove_tree_signal_safe(const char* path) {
  const int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    remove_contents(fd, 0);
    close(fd);
  }
  rmdir(path);
}

void on_signal(int sig) {
  const int saved_errno = errno;
  for (Slot& s : g_slots)
    if (s.state.load(std::memory_order_acquire) == 1) remove_tree_signal_safe(s.path);
  for (size_t i = 0; i < std::size(kSignals); ++i)
    if (kSignals[i] == sig) sigaction(sig, &g_previous[i], nullptr);
  errno = saved_errno;
  raise(sig);  // delivered once this handler returns, with the previous disposition
}

void install_handlers() {
  for (size_t i = 0; i < std::size(kSignals); ++i) {
    struct sigaction old {};
    sigaction(kSignals[i], nullptr, &old);
    g_previous[i] = old;
    // A signal the process ignores (e.g. SIGHUP under nohup) stays ignored.
    if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_IGN) continue;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int other : kSignals) sigaddset(&sa.sa_mask, other);
    sa.sa_flags = 0;
    sigaction(kSignals[i], &sa, nullptr);
  }
}

int register_path(const fs::path& p) {
  std::call_once(g_handlers_installed, install_handlers);
  const std::string s = p.string();
  if (s.size() >= PATH_MAX) fail("{}: path too long for a temporary folder", s);
  std::lock_guard<std::mutex> lock(g_slots_mutex);
  for (int i = 0; i < kSlots; ++i) {
    if (g_slots[i].state.load(std::memory_order_relaxed) != 0) continue;
    std::memcpy(g_slots[i].path, s.c_str(), s.size() + 1);
    g_slots[i].state.store(1, std::memory_order_release);
    return i;
  }
  fail("{}: more than {} temporary folders at once", s, kSlots);
}

void unregister_slot(int slot) {
  if (slot < 0) return;
  std::lock_guard<std::mutex> lock(g_slots_mutex);
  g_slots[slot].state.store(0, std::memory_order_release);
}

}  // namespace

fs::path TempDir::path_beside(const fs::path& target) {
  fs::path t = target;
  if (t.filename().empty()) t = t.parent_path();  // "out/" -> "out"
  const fs::path parent = t.has_parent_path() ? t.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) fail("{}: cannot create the folder {}: {}", target.string(), parent.string(), ec.message());
  return parent / fmt::format("{}.tmp-{}", t.filename().string(), getpid());
}

TempDir::TempDir(fs::path path) : path_(fs::absolute(std::move(path))) {
  // Registered before it exists, so that no moment has it on disk but unknown to the handler.
  slot_ = register_path(path_);
  std::error_code ec;
  if (!fs::create_directory(path_, ec)) {
    unregister_slot(slot_);
    slot_ = -1;
    if (ec) fail("{}: cannot create the temporary folder: {}", path_.string(), ec.message());
    fail("{}: already exists (another run with the same process id, or left by a killed run: delete it)",
         path_.string());
  }
}

TempDir::~TempDir() { remove(); }

void TempDir::remove() {
  if (slot_ < 0) return;
  std::error_code ignored;
  fs::remove_all(path_, ignored);
  unregister_slot(slot_);
  slot_ = -1;
}

void TempDir::move_to(const fs::path& target) {
  if (slot_ < 0) fail("{}: the temporary folder was already moved or removed", path_.string());
  fs::path dest = target;
  if (dest.filename().empty()) dest = dest.parent_path();
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(dest, ec);
  if (fs::exists(st) && !fs::is_directory(st))
    fail("{}: exists and is not a folder; not replacing it", dest.string());
  if (fs::exists(st) && !fs::is_empty(dest, ec)) {
    // Atomic swap; the old contents end up at our temporary path and go with it.
    if (renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, dest.c_str(), RENAME_EXCHANGE) == 0) {
      remove();
      return;
    }
    if (errno != EINVAL && errno != ENOSYS)
      fail("{}: cannot replace the existing folder: {}", dest.string(), std::strerror(errno));
    // No RENAME_EXCHANGE on this file system: move the old folder aside, then ours in.
    const fs::path aside = path_.string() + ".old";
    fs::rename(dest, aside, ec);
    if (ec) fail("{}: cannot move the existing folder aside: {}", dest.string(), ec.message());
    fs::rename(path_, dest, ec);
    if (ec) {
      std::error_code ignored;
      fs::rename(aside, dest, ignored);
      fail("{}: cannot move the finished folder into place: {}", dest.string(), ec.message());
    }
    unregister_slot(slot_);
    slot_ = -1;
    fs::remove_all(aside, ec);
    return;
  }
  fs::rename(path_, dest, ec);  // replaces an empty directory
  if (ec) fail("{}: cannot move the finished folder into place: {}", dest.string(), ec.message());
  unregister_slot(slot_);
  slot_ = -1;
}

}  // namespace tquant
