#pragma once
// Reading a whole file into memory, with errors that name the file and what it was for.
#include <filesystem>
#include <string>
#include <string_view>

namespace tquant {

// The file's bytes. `what` describes its role in the error ("data file", "calibration file").
std::string read_text_file(const std::filesystem::path& path, std::string_view what = "file");

}  // namespace tquant
