#include "quant/calibration.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/atomic_file.h"
#include "core/error.h"
#include "quant/channel_groups.h"
#include "quant/fake_quant.h"
#include "quant/quant_params_json.h"
#include "quant/range_estimator.h"

namespace tquant {
namespace {

bool is_attention_matrix(const std::string& point) {
  return point.ends_with(".attn.scores") || point.ends_with(".attn.probs");
}

Grouping activation_grouping(const TensorQuantSpec& s, const std::string& point, std::vector<int32_t> channel_group) {
  const Granularity g = parse_granularity(s.granularity);
  if (is_attention_matrix(point) && g != Granularity::PerTensor)
    fail("recipe: {} is an attention matrix and can only be quantized per tensor, not {}", point, s.granularity);
  switch (g) {
    case Granularity::PerTensor: return per_tensor();
    case Granularity::PerChannel: return per_channel(1);
    case Granularity::PerGroup: return per_group(s.group_size);
    case Granularity::PerEmbeddingGroup: return per_embedding_group(std::move(channel_group));
    case Granularity::PerToken: return per_token();
  }
  return per_tensor();
}

std::string describe(const TensorQuantSpec& s) {
  std::string g = s.granularity;
  if (s.granularity == "per_group") g += fmt::format("({})", s.group_size);
  return fmt::format("{}-bit {} {} {}", s.bits, s.symmetric ? "sym" : "asym", g, s.estimator);
}

// Observes every point a recipe quantizes. In `channel_ranges_only` mode it records each
// channel's min/max instead (the first pass of PEG with permutation).
class CalibrationHook : public Hook {
 public:
  CalibrationHook(const Recipe& recipe, const std::map<std::string, std::vector<int32_t>>* peg_groups)
      : recipe_(recipe), peg_groups_(peg_groups) {}

  void on_activation(const std::string& point, Tensor& x, const BatchInfo& batch) override {
    auto it = specs_.find(point);
    if (it == specs_.end()) it = specs_.emplace(point, recipe_.activation_spec(point)).first;
    const auto& spec = it->second;
    if (!spec || spec->granularity == "per_token") return;
    const bool peg = spec->granularity == "per_embedding_group";
    if (!peg_groups_ && !(peg && spec->permute)) return;  // first pass: only permuted PEG points
    const ValidView v = valid_part(x, batch);
    auto& obs = observers_[point];
    if (!obs) {
      ObserverOptions o;
      o.point = point;
      o.percentile = spec->percentile;
      if (!peg_groups_) {
        o.grouping = per_channel(1);
        obs = make_range_observer("minmax", o);
      } else {
        std::vector<int32_t> groups;
        if (peg) {
          const auto g = peg_groups_->find(point);
          groups = g != peg_groups_->end() ? g->second : contiguous_channel_groups(v.cols, spec->groups);
        }
        o.grouping = activation_grouping(*spec, point, std::move(groups));
        obs = make_range_observer(spec->estimator, o);
      }
    }
    obs->observe(v.data.data(), v.rows, v.cols);
  }

  std::map<std::string, std::unique_ptr<RangeObserver>>& observers() { return observers_; }
  const std::optional<TensorQuantSpec>& spec(const std::string& point) const { return specs_.at(point); }
  const std::map<std::string, std::optional<TensorQuantSpec>>& specs() const { return specs_; }

 private:
  const Recipe& recipe_;
  const std::map<std::string, std::vector<int32_t>>* peg_groups_;
  std::map<std::string, std::optional<TensorQuantSpec>> specs_;
  std::map<std::string, std::unique_ptr<RangeObserver>> observers_;
};

void run_all(const Model& model, const std::vector<Batch>& batches, const std::shared_ptr<Hook>& hook) {
  Hooks hooks;
  hooks.add(hook);
  for (const Batch& b : batches) model.forward(b, &hooks);
}

}  // namespace

ValidView valid_part(const Tensor& x, const BatchInfo& batch) {
  ValidView v;
  const int64_t B = batch.batch, T = batch.seq;
  if (x.ndim() == 4) {  // [B, H, T, T]
    const int64_t H = x.dim(1);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < batch.lengths[b]; ++i) {
          const int64_t visible = batch.causal ? i + 1 : batch.lengths[b];
          const float* row = x.data() + ((b * H + h) * T + i) * T;
          v.data.insert(v.data.end(), row, row + visible);
        }
    v.rows = 1;
    v.cols = static_cast<int64_t>(v.data.size());
    return v;
  }
  v.cols = x.cols();
  if (x.ndim() == 3 && x.dim(0) == B && x.dim(1) == T) {
    for (int64_t b = 0; b < B; ++b) {
      const float* start = x.data() + b * T * v.cols;
      v.data.insert(v.data.end(), start, start + batch.lengths[b] * v.cols);
      v.rows += batch.lengths[b];
    }
    return v;
  }
  v.data.assign(x.data(), x.data() + x.numel());  // [B, C] heads: every row is real
  v.rows = x.rows();
  return v;
}

Grouping weight_grouping(const TensorQuantSpec& spec) {
  const Granularity g = parse_granularity(spec.granularity);
  return g == Granularity::PerChannel ? per_channel(0) : g == Granularity::PerGroup ? per_group(spec.group_size)
                                                                                    : per_tensor();
}

std::vector<QuantizedTensor> quantized_tensors(Model& model, const Recipe& recipe) {
  std::vector<QuantizedTensor> out;
  for (const auto& [name, table] : model.embedding_tables())
    if (auto spec = recipe.embedding_spec(name)) out.push_back({name, table, *spec});
  for (Linear* l : model.linears())
    if (auto spec = recipe.weight_spec(l->name)) out.push_back({l->name, &l->weight, *spec});
  return out;
}

QuantParams estimate_weight_params(const QuantizedTensor& t) {
  ObserverOptions o;
  o.point = t.name + ".weight";
  o.percentile = t.spec.percentile;
  o.grouping = weight_grouping(t.spec);
  auto obs = make_range_observer(t.spec.estimator, o);
  obs->observe(*t.tensor);
  return obs->finalize(t.spec.bits, t.spec.symmetric);
}

std::map<std::string, std::string> quantize_weights(Model& model, const Recipe& recipe,
                                                    const std::map<std::string, QuantParams>& fixed,
                                                    std::map<std::string, QuantParams>* used) {
  model.require_fp_weights("quantizing weights with a recipe");
  std::map<std::string, std::string> out;
  for (const QuantizedTensor& t : quantized_tensors(model, recipe)) {
    const auto f = fixed.find(t.name);
    const QuantParams p = f != fixed.end() ? f->second : estimate_weight_params(t);
    // A tied head shares the embedding's storage: quantize a private copy.
    Tensor w = t.tensor->clone();
    fake_quantize(w, p, t.name + ".weight");
    *t.tensor = std::move(w);
    out[t.name] = describe(t.spec) + (f != fixed.end() ? " (trained scales)" : "");
    if (used) (*used)[t.name] = p;
  }
  return out;
}

Calibration calibrate_activations(const Model& model, const Recipe& recipe, const std::vector<Batch>& batches) {
  if (batches.empty()) fail("calibration needs at least one batch");
  std::map<std::string, std::vector<int32_t>> peg_groups;
  {
    // Pass 1 (only when a PEG point asks for the range-based permutation): about 10 batches of
    // per-channel ranges, as the paper does.
    auto ranges = std::make_shared<CalibrationHook>(recipe, nullptr);
    std::vector<Batch> first(batches.begin(), batches.begin() + std::min<size_t>(batches.size(), 10));
    run_all(model, first, ranges);
    for (auto& [point, obs] : ranges->observers())
      peg_groups[point] = range_permuted_channel_groups(channel_widths(obs->ranges(8, false)), ranges->spec(point)->groups);
  }
  auto hook = std::make_shared<CalibrationHook>(recipe, &peg_groups);
  run_all(model, batches, hook);
  Calibration c;
  c.recipe = recipe.name;
  for (auto& [point, obs] : hook->observers()) {
    const auto& spec = *hook->spec(point);
    c.points[point] = obs->finalize(spec.bits, spec.symmetric);
  }
  // Per-token points have nothing to calibrate but are still quantized, dynamically.
  for (const auto& [point, spec] : hook->specs())
    if (spec && spec->granularity == "per_token") {
      QuantParams p;
      p.bits = spec->bits;
      p.symmetric = spec->symmetric;
      p.grouping = per_token();
      c.points[point] = p;
    }
  return c;
}

FakeQuantHook::FakeQuantHook(const Calibration& c) : params_(c.points) {}

void FakeQuantHook::on_activation(const std::string& point, Tensor& x, const BatchInfo&) {
  const auto it = params_.find(point);
  if (it == params_.end()) return;
  fake_quantize(x, it->second, point);
}

void save_calibration(const std::filesystem::path& file, const Calibration& c) {
  write_text_atomically(file, calibration_json(c));
}

std::string calibration_json(const Calibration& c) {
  nlohmann::json j;
  j["format"] = "tquant-calibration-1";
  j["recipe"] = c.recipe;
  j["weights"] = c.weights;
  for (const auto& [point, p] : c.points) j["points"][point] = p;
  for (const auto& [linear, p] : c.weight_params) j["weight_params"][linear] = p;
  return j.dump(1) + "\n";
}

Calibration load_calibration(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) fail("{}: cannot open the calibration file", file.string());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: malformed JSON: {}", file.string(), e.what());
  }
  if (j.value("format", "") != "tquant-calibration-1")
    fail("{}: not a tquant calibration file (field \"format\" must be \"tquant-calibration-1\")", file.string());
  Calibration c;
  c.recipe = j.value("recipe", "");
  if (j.contains("weights")) c.weights = j["weights"].get<std::map<std::string, std::string>>();
  if (!j.contains("points") || !j["points"].is_object()) fail("{}: field \"points\" is missing", file.string());
  for (const auto& [point, p] : j["points"].items())
    c.points[point] = quant_params_from_json(p, fmt::format("{}: points.{}", file.string(), point));
  if (j.contains("weight_params"))
    for (const auto& [linear, p] : j["weight_params"].items())
      c.weight_params[linear] = quant_params_from_json(p, fmt::format("{}: weight_params.{}", file.string(), linear));
  return c;
}

std::vector<Batch> calibration_windows(const std::vector<int32_t>& tokens, int samples, int length, uint64_t seed,
                                       int bos_id, int per_batch) {
  const int shift = bos_id >= 0 ? 1 : 0;
  const int64_t span = length - shift;
  if (samples < 1 || length < 2) fail("calibration needs --calib-samples >= 1 and --calib-len >= 2");
  if (static_cast<int64_t>(tokens.size()) < span)
    fail("the calibration data has {} tokens, fewer than --calib-len {}", tokens.size(), length);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> start(0, static_cast<int64_t>(tokens.size()) - span);
  std::vector<Batch> out;
  for (int s = 0; s < samples; s += per_batch) {
    Batch b;
    b.batch = std::min(per_batch, samples - s);
    b.seq = length;
    for (int i = 0; i < b.batch; ++i) {
      const int64_t at = start(rng);
      if (shift) b.ids.push_back(bos_id);
      b.ids.insert(b.ids.end(), tokens.begin() + at, tokens.begin() + at + span);
    }
    b.lengths.assign(b.batch, length);
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace tquant
