#include "quant/recipe.h"

#include <fnmatch.h>

#include <cstdlib>
#include <fstream>
#include <set>

#include "core/error.h"

namespace tquant {
namespace {

using json = nlohmann::ordered_json;

const std::set<std::string> kGranularities = {"per_tensor", "per_channel", "per_group", "per_embedding_group",
                                              "per_token"};
const std::set<std::string> kEstimators = {"current_minmax", "minmax",   "running_minmax", "mse",
                                           "mse_golden",     "percentile", "cross_entropy"};
const std::set<std::string> kSpecKeys = {"bits",   "symmetric", "granularity", "group_size", "groups",
                                         "permute", "estimator", "percentile",  "enabled"};

std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : ", ") + x;
  return out;
}

// Applies the keys of `j` onto `spec`, validating each; `where` names the JSON location.
void apply_spec(const json& j, TensorQuantSpec& spec, const std::string& file, const std::string& where) {
  if (!j.is_object()) fail("{}: {} must be an object", file, where);
  for (const auto& [key, v] : j.items()) {
    const std::string at = where + "." + key;
    if (key == "points" || key == "skip") continue;  // list fields handled by the caller
    if (!kSpecKeys.count(key)) fail("{}: unknown field {} (known: {}, points, skip)", file, at, join(kSpecKeys));
    if (key == "bits") {
      if (!v.is_number_integer() || v.get<int>() < 2 || v.get<int>() > 16)
        fail("{}: {} must be an integer from 2 to 16, found {}", file, at, v.dump());
      spec.bits = v.get<int>();
    } else if (key == "symmetric" || key == "permute" || key == "enabled") {
      if (!v.is_boolean()) fail("{}: {} must be true or false, found {}", file, at, v.dump());
      (key == "symmetric" ? spec.symmetric : key == "permute" ? spec.permute : spec.enabled) = v.get<bool>();
    } else if (key == "granularity" || key == "estimator") {
      const auto& allowed = key == "granularity" ? kGranularities : kEstimators;
      if (!v.is_string() || !allowed.count(v.get<std::string>()))
        fail("{}: {} must be one of {}, found {}", file, at, join(allowed), v.dump());
      (key == "granularity" ? spec.granularity : spec.estimator) = v.get<std::string>();
    } else if (key == "group_size" || key == "groups") {
      if (!v.is_number_integer() || v.get<int>() < 1) fail("{}: {} must be a positive integer, found {}", file, at, v.dump());
      (key == "group_size" ? spec.group_size : spec.groups) = v.get<int>();
    } else if (key == "percentile") {
      if (!v.is_number() || v.get<double>() <= 50 || v.get<double>() > 100)
        fail("{}: {} must be a number in (50, 100], found {}", file, at, v.dump());
      spec.percentile = v.get<double>();
    }
  }
}

void check_spec(const TensorQuantSpec& s, const std::string& file, const std::string& where) {
  if (s.granularity == "per_group" && s.group_size < 1)
    fail("{}: {} uses per_group granularity but sets no \"group_size\"", file, where);
  if (s.granularity == "per_embedding_group" && s.groups < 1)
    fail("{}: {} uses per_embedding_group granularity but sets no \"groups\" (K)", file, where);
}

std::vector<std::string> string_list(const json& j, const std::string& file, const std::string& where) {
  if (!j.is_array()) fail("{}: {} must be a list of name patterns", file, where);
  std::vector<std::string> out;
  for (const auto& v : j) {
    if (!v.is_string()) fail("{}: {} holds a non-string {}", file, where, v.dump());
    out.push_back(v.get<std::string>());
  }
  return out;
}

void check_pattern(const std::string& pattern, const std::vector<std::string>& known, const std::string& file,
                   const std::string& where) {
  for (const auto& k : known)
    if (glob_match(pattern, k)) return;
  fail("{}: {} \"{}\" matches no quantization point or linear layer of this model (names are listed in "
       "docs/hooks.md)", file, where, pattern);
}

}  // namespace

bool glob_match(const std::string& pattern, const std::string& name) {
  return fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

std::filesystem::path recipes_dir() {
  if (const char* env = std::getenv("TQUANT_RECIPES_DIR")) return env;
  return TQUANT_SOURCE_DIR "/recipes";
}

Recipe parse_recipe(const json& j, const std::filesystem::path& path, const std::vector<std::string>& known) {
  const std::string file = path.string();
  if (!j.is_object()) fail("{}: a recipe must be a JSON object", file);
  for (const auto& [key, v] : j.items())
    if (key != "name" && key != "description" && key != "weights" && key != "embeddings" && key != "activations" &&
        key != "overrides")
      fail("{}: unknown top-level field \"{}\" (known: name, description, weights, embeddings, activations, overrides)",
           file, key);
  Recipe r;
  r.file = path;
  r.source = j;
  r.name = j.contains("name") && j["name"].is_string() ? j["name"].get<std::string>() : path.stem().string();
  // Weights and embedding tables: a symmetric per-channel default, plus a skip list.
  auto weight_like = [&](const char* section, std::vector<std::string>& skip) {
    TensorQuantSpec w;
    w.symmetric = true;
    w.granularity = "per_channel";
    apply_spec(j[section], w, file, section);
    check_spec(w, file, section);
    if (w.granularity == "per_token" || w.granularity == "per_embedding_group")
      fail("{}: {}.granularity \"{}\" applies to activations only", file, section, w.granularity);
    const std::string where = std::string(section) + ".skip";
    if (j[section].contains("skip")) skip = string_list(j[section]["skip"], file, where);
    for (const auto& p : skip) check_pattern(p, known, file, where + " pattern");
    return w;
  };
  if (j.contains("weights")) r.weights = weight_like("weights", r.weight_skip);
  if (j.contains("embeddings")) r.embeddings = weight_like("embeddings", r.embedding_skip);
  if (j.contains("activations")) {
    TensorQuantSpec a;
    apply_spec(j["activations"], a, file, "activations");
    check_spec(a, file, "activations");
    if (!j["activations"].contains("points")) fail("{}: activations.points is missing", file);
    r.activation_points = string_list(j["activations"]["points"], file, "activations.points");
    for (const auto& p : r.activation_points) check_pattern(p, known, file, "activations.points pattern");
    r.activations = a;
  }
  if (j.contains("overrides")) {
    if (!j["overrides"].is_object()) fail("{}: overrides must be an object of pattern: spec", file);
    for (const auto& [pattern, spec] : j["overrides"].items()) {
      check_pattern(pattern, known, file, "overrides pattern");
      TensorQuantSpec probe;
      apply_spec(spec, probe, file, "overrides." + pattern);
      r.overrides.emplace_back(pattern, spec);
    }
  }
  return r;
}

Recipe load_recipe(const std::string& name_or_path, const std::vector<std::string>& known) {
  std::filesystem::path path = name_or_path;
  if (!std::filesystem::exists(path)) {
    const auto preset = recipes_dir() / (name_or_path + ".json");
    if (!std::filesystem::exists(preset))
      fail("recipe \"{}\": no such file, and no preset {} (presets are in {})", name_or_path, preset.filename().string(),
           recipes_dir().string());
    path = preset;
  }
  std::ifstream in(path);
  if (!in) fail("{}: cannot open the recipe", path.string());
  json j;
  try {
    j = json::parse(in);
  } catch (const json::parse_error& e) {
    fail("{}: malformed JSON: {}", path.string(), e.what());
  }
  return parse_recipe(j, path, known);
}

namespace {

std::optional<TensorQuantSpec> weight_like_spec(const Recipe& r, const std::optional<TensorQuantSpec>& base,
                                                const std::vector<std::string>& skip, const std::string& name,
                                                const std::string& what) {
  if (!base) return std::nullopt;
  for (const auto& p : skip)
    if (glob_match(p, name)) return std::nullopt;
  TensorQuantSpec s = *base;
  for (const auto& [pattern, spec] : r.overrides)
    if (glob_match(pattern, name)) apply_spec(spec, s, r.file.string(), "overrides." + pattern);
  check_spec(s, r.file.string(), what + name);
  if (!s.enabled) return std::nullopt;
  return s;
}

}  // namespace

std::optional<TensorQuantSpec> Recipe::weight_spec(const std::string& linear) const {
  return weight_like_spec(*this, weights, weight_skip, linear, "the weights of ");
}

std::optional<TensorQuantSpec> Recipe::embedding_spec(const std::string& table) const {
  return weight_like_spec(*this, embeddings, embedding_skip, table, "the embedding table ");
}

std::optional<TensorQuantSpec> Recipe::activation_spec(const std::string& point) const {
  if (!activations) return std::nullopt;
  bool listed = false;
  for (const auto& p : activation_points) listed = listed || glob_match(p, point);
  if (!listed) return std::nullopt;
  TensorQuantSpec s = *activations;
  for (const auto& [pattern, spec] : overrides)
    if (glob_match(pattern, point)) apply_spec(spec, s, file.string(), "overrides." + pattern);
  check_spec(s, file.string(), "activation point " + point);
  if (!s.enabled) return std::nullopt;
  return s;
}

}  // namespace tquant
