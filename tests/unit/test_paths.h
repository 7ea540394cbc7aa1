#pragma once
// Locations the tests share: the read-only ../shared folder and a scratch folder in the build.
#include <filesystem>
#include <string>

namespace tquant::testing {

inline std::filesystem::path shared_dir() { return TQUANT_SHARED_DIR; }
inline std::filesystem::path default_model() { return shared_dir() / "models" / "tinystories-656k"; }
inline std::filesystem::path scratch(const std::string& name) {
  const auto dir = std::filesystem::path(TQUANT_TEST_TMP) / name;
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace tquant::testing
