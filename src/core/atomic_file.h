#pragma once
// Everything tquant writes goes to a temporary name beside the target and is renamed into place
// only when complete, so a crash or Ctrl-C never leaves a half-written file or folder.
#include <filesystem>
#include <functional>
#include <string>

namespace tquant {

// Calls `write(tmp_path)`, then renames tmp_path to `target`. On any exception the temporary is
// removed and the exception propagates; `target` is untouched.
void write_file_atomically(const std::filesystem::path& target,
                           const std::function<void(const std::filesystem::path&)>& write);

// Writes a whole string as a file, atomically.
void write_text_atomically(const std::filesystem::path& target, const std::string& text);

// The same for a directory: `write(tmp_dir)` fills a fresh temporary directory, which then
// replaces `target` (which must not exist, or be a directory that is replaced whole).
void write_directory_atomically(const std::filesystem::path& target,
                                const std::function<void(const std::filesystem::path&)>& write);

}  // namespace tquant
