#include <array>
#include <string>

#include "io/safetensors.h"
#include "io/safetensors_detail.h"

namespace tquant {

namespace {

struct DTypeRow {
  DType dtype;
  const char* name;  // as spelled in safetensors headers
  size_t size;       // bytes per element
};

// Same order as the enum, so a row is found by indexing.
constexpr std::array<DTypeRow, 15> kDTypes = {{
    {DType::BOOL, "BOOL", 1},
    {DType::U8, "U8", 1},
    {DType::I8, "I8", 1},
    {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::I16, "I16", 2},
    {DType::U16, "U16", 2},
    {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},
    {DType::I32, "I32", 4},
    {DType::U32, "U32", 4},
    {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},
    {DType::I64, "I64", 8},
    {DType::U64, "U64", 8},
}};

constexpr bool rows_match_enum() {
  for (size_t i = 0; i < kDTypes.size(); ++i)
    if (static_cast<size_t>(kDTypes[i].dtype) != i) return false;
  return true;
}
static_assert(rows_match_enum(), "kDTypes must list the DType enumerators in order");

}  // namespace

const char* dtype_name(DType dtype) { return kDTypes.at(static_cast<size_t>(dtype)).name; }

size_t dtype_size(DType dtype) { return kDTypes.at(static_cast<size_t>(dtype)).size; }

bool parse_dtype(const std::string& name, DType* out) {
  for (const DTypeRow& row : kDTypes) {
    if (name == row.name) {
      *out = row.dtype;
      return true;
    }
  }
  return false;
}

std::string safetensors_detail::known_dtype_names() {
  std::string names;
  for (const DTypeRow& row : kDTypes) names += (names.empty() ? "" : ", ") + std::string(row.name);
  return names;
}

}  // namespace tquant
