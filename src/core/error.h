#pragma once
// One exception type for every user-facing failure. Messages name the file, the field or
// tensor, and what is wrong; the CLI prints them and exits non-zero.
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace tquant {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace tquant
