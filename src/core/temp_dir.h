#pragma once
// A temporary directory that is removed on every way out: normal scope exit, an exception, and
// SIGINT, SIGTERM or SIGHUP (Ctrl-C, kill, a closed terminal). Long-running writers build their
// output inside one and move it into place only when it is complete, so an interrupted run
// leaves neither a half-written result nor litter beside it. SIGKILL and power loss cannot be
// caught: a stale "<target>.tmp-<pid>" folder can then remain; it is never mistaken for output.
//
// The signal handler removes every live TempDir with async-signal-safe system calls only
// (openat/getdents64/unlinkat), then restores the previous disposition of the signal and
// raises it again, so the process still dies of that signal (exit status 130 for Ctrl-C).
#include <filesystem>

namespace tquant {

class TempDir {
 public:
  // Creates `path` (its parent must exist; `path` itself must not) and registers it for removal.
  explicit TempDir(std::filesystem::path path);
  // "<target>.tmp-<pid>" beside `target`, creating the parent folders of `target` if needed.
  static std::filesystem::path path_beside(const std::filesystem::path& target);
  // Removes the directory and everything in it, unless it was moved away by move_to.
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  bool active() const { return slot_ >= 0; }

  // Renames the finished directory to `target`, atomically replacing what is there:
  //   absent: plain rename;  an empty directory: rename(2) replaces it;
  //   a non-empty directory: exchanged atomically with renameat2(RENAME_EXCHANGE) (or, where the
  //   file system cannot, renamed aside first), and the old contents are then deleted.
  // Whether replacing a non-empty `target` is acceptable is the caller's decision. Afterwards
  // this object no longer owns anything. Errors (e.g. `target` is a file, or on another file
  // system) throw tquant::Error and leave the temporary directory to the destructor.
  void move_to(const std::filesystem::path& target);

  // Deletes the directory now (idempotent).
  void remove();

 private:
  std::filesystem::path path_;
  int slot_ = -1;  // index in the signal handler's table; -1 when no longer owned
};

}  // namespace tquant
