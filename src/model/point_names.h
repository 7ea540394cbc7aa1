#pragma once
// Every quantization-point and linear-layer name any supported family can produce
// (docs/hooks.md), for validating recipes that are written once for all families.
#include <string>
#include <vector>

namespace tquant {

std::vector<std::string> documented_point_names(int layers);
std::vector<std::string> documented_linear_names(int layers);
// The embedding tables, as recipes name them (Model::embedding_tables).
const std::vector<std::string>& documented_embedding_names();
// Everything a recipe may name: points, linears and embedding tables.
std::vector<std::string> documented_recipe_names(int layers);

}  // namespace tquant
