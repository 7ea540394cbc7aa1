#include "core/text_file.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace tquant {

std::string read_text_file(const std::filesystem::path& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the {}", path.string(), what);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail("{}: reading the {} failed", path.string(), what);
  return text.str();
}

}  // namespace tquant
