#pragma once
// Locations the tests share: the read-only ../shared folder and a scratch folder in the build.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace tquant::testing {

inline std::filesystem::path shared_dir() { return TQUANT_SHARED_DIR; }
inline std::filesystem::path default_model() { return shared_dir() / "models" / "tinystories-656k"; }

// ctest runs each test of one binary as its own process, several at once, and a fixture built
// once per process (a checkpoint, a GGUF) would otherwise be removed and rewritten under another
// process that is reading it. So each process gets its own root, removed when it exits. A death
// test's child (re-executed by gtest) inherits its parent's root through the environment, so
// that both look at the same files.
inline std::filesystem::path process_scratch_root() {
  struct Root {
    std::filesystem::path dir;
    bool owned = false;
    Root() {
      if (const char* inherited = std::getenv("TQUANT_TEST_SCRATCH_ROOT")) {
        dir = inherited;
        return;
      }
      dir = std::filesystem::path(TQUANT_TEST_TMP) / ("pid-" + std::to_string(::getpid()));
      owned = true;
      ::setenv("TQUANT_TEST_SCRATCH_ROOT", dir.c_str(), 1);
    }
    ~Root() {
      std::error_code ignored;
      if (owned) std::filesystem::remove_all(dir, ignored);
    }
  };
  static const Root root;
  return root.dir;
}

inline std::filesystem::path scratch(const std::string& name) {
  const auto dir = process_scratch_root() / name;
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace tquant::testing
