#include "train/run_support.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/text_file.h"

namespace tquant::train {

nlohmann::ordered_json read_config_json(const std::filesystem::path& dir) {
  const auto path = dir / "config.json";
  try {
    auto j = nlohmann::ordered_json::parse(read_text_file(path, "model config"));
    if (!j.is_object()) fail("{}: not a JSON object", path.string());
    return j;
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", path.string(), e.what());
  }
}

Dropout dropout_from_config(const nlohmann::ordered_json& c, std::optional<float> all) {
  auto get = [&](const char* key, float fallback) {
    if (!c.contains(key)) return fallback;
    if (!c[key].is_number()) fail("config.json: field \"{}\" must be a number", key);
    return c[key].get<float>();
  };
  Dropout d;
  d.hidden = get("hidden_dropout_prob", 0.f);
  d.attention = get("attention_probs_dropout_prob", get("attention_dropout", 0.f));
  if (all) d.hidden = d.attention = *all;
  for (float p : {d.hidden, d.attention})
    if (!(p >= 0.f && p < 1.f)) fail("dropout probability {} is outside [0, 1)", p);
  return d;
}

int64_t warmup_steps(double warmup, int64_t total) {
  if (!(warmup >= 0)) fail("--warmup {} must be ≥ 0", warmup);
  if (warmup < 1) return static_cast<int64_t>(std::llround(warmup * static_cast<double>(total)));
  return static_cast<int64_t>(warmup);
}

void check_same_options(const nlohmann::ordered_json& saved, const nlohmann::ordered_json& now,
                        const std::filesystem::path& dir) {
  for (const auto& [k, v] : now.items()) {
    if (!saved.contains(k))
      fail("{}: cannot resume: the saved run has no option \"{}\" (it was written by another command?)", dir.string(), k);
    if (saved[k] != v)
      fail("{}: cannot resume with --{} {} — the interrupted run used {}; resume with the same options",
           dir.string(), k, v.dump(), saved[k].dump());
  }
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace tquant::train
