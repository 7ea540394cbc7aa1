#pragma once
// A quantization recipe: which weights and which activation points (docs/hooks.md names) are
// quantized, and how. Recipes are JSON files (presets live in recipes/):
//
// {
//   "name": "w8a8",
//   "weights":     {"bits": 8, "granularity": "per_channel", "symmetric": true, "estimator": "minmax",
//                   "skip": ["lm_head"]},
//   "activations": {"bits": 8, "granularity": "per_tensor", "symmetric": false,
//                   "estimator": "running_minmax", "points": ["embed.out", "layers.*.attn.scores", ...]},
//   "embeddings":  {"bits": 2, "granularity": "per_channel", "symmetric": false, "estimator": "mse",
//                   "skip": ["embed.positions"]},
//   "overrides":   {"layers.*.ffn.residual_sum": {"bits": 16}, "layers.3.ffn.down_proj": {"bits": 4}}
// }
//
// Patterns are shell globs ('*' also matches dots). Overrides apply in file order, so a later,
// more specific entry (e.g. "layers.3.ffn.residual_sum") refines an earlier glob; an override
// names activation points, linear layers or embedding tables. {"enabled": false} leaves a point in
// FP32. The embedding tables (embed.tokens, embed.positions, embed.types) are [rows, D] lookup
// tables; "per_channel" gives each row (each token's vector) its own scale. Without an
// "embeddings" section they stay FP32.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tquant {

// How one tensor is quantized.
struct TensorQuantSpec {
  int bits = 8;
  bool symmetric = false;
  std::string granularity = "per_tensor";  // per_tensor | per_channel | per_group | per_embedding_group | per_token
  int group_size = 0;                      // per_group: columns per group
  int groups = 0;                          // per_embedding_group: K
  bool permute = false;                    // per_embedding_group: range-based permutation
  std::string estimator = "minmax";        // see quant/range_estimator.h
  double percentile = 99.99;               // estimator "percentile"
  bool enabled = true;
};

struct Recipe {
  std::string name;
  std::filesystem::path file;
  nlohmann::ordered_json source;  // the recipe as read, for reports

  std::optional<TensorQuantSpec> weights;      // base spec for every linear's weight
  std::vector<std::string> weight_skip;        // linear-name globs left in FP32
  std::optional<TensorQuantSpec> embeddings;   // base spec for the embedding tables
  std::vector<std::string> embedding_skip;     // table-name globs left in FP32
  std::optional<TensorQuantSpec> activations;  // base spec for activation points
  std::vector<std::string> activation_points;  // point-name globs that are quantized
  std::vector<std::pair<std::string, nlohmann::ordered_json>> overrides;

  // The spec for a linear's weight, or nullopt when it stays FP32.
  std::optional<TensorQuantSpec> weight_spec(const std::string& linear) const;
  // The spec for an embedding table (embed.tokens|positions|types), or nullopt when it stays FP32.
  std::optional<TensorQuantSpec> embedding_spec(const std::string& table) const;
  // The spec for an activation point, or nullopt when it is not quantized.
  std::optional<TensorQuantSpec> activation_spec(const std::string& point) const;
};

// Reads and validates a recipe: a preset name (looked up in the recipes/ folder) or a path.
// `known_names` is every point, linear and table name the recipe may refer to
// (documented_recipe_names in model/point_names.h); a pattern matching none
// of them is an error that names it.
Recipe load_recipe(const std::string& name_or_path, const std::vector<std::string>& known_names);
Recipe parse_recipe(const nlohmann::ordered_json& j, const std::filesystem::path& file,
                    const std::vector<std::string>& known_names);

// The folder holding the preset recipes (the source tree's recipes/, or TQUANT_RECIPES_DIR).
std::filesystem::path recipes_dir();

bool glob_match(const std::string& pattern, const std::string& name);

}  // namespace tquant
