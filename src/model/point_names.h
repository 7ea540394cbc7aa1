#pragma once
// Every quantization-point and linear-layer name any supported family can produce
// (docs/hooks.md), for validating recipes that are written once for all families.
#include <string>
#include <vector>

namespace tquant {

std::vector<std::string> documented_point_names(int layers);
std::vector<std::string> documented_linear_names(int layers);

}  // namespace tquant
