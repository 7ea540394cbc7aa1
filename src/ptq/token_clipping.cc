#include "ptq/token_clipping.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"
#include "quant/fake_quant.h"
#include "quant/range_estimator.h"

namespace tquant {
namespace {

double quantile(std::vector<float> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * (v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - lo) * (v[hi] - v[lo]);
}

// Per quantization point, per calibration batch: every token's (min, max).
struct TokenExtremes {
  std::vector<std::vector<float>> mins, maxs;  // [batch][token]
};

class TokenExtremesHook : public Hook {
 public:
  TokenExtremesHook(const Recipe& recipe, std::map<std::string, TokenExtremes>& out) : recipe_(recipe), out_(out) {}
  void on_activation(const std::string& point, Tensor& x, const BatchInfo& batch) override {
    auto it = specs_.find(point);
    if (it == specs_.end()) it = specs_.emplace(point, recipe_.activation_spec(point)).first;
    if (!it->second) return;
    if (it->second->granularity != "per_tensor")
      fail("token-wise clipping sets per-tensor ranges; {} asks for {}", point, it->second->granularity);
    std::vector<float> mins, maxs;
    auto token = [&](const float* row, int64_t n) {
      float lo = row[0], hi = row[0];
      for (int64_t j = 1; j < n; ++j) {
        lo = std::min(lo, row[j]);
        hi = std::max(hi, row[j]);
      }
      mins.push_back(lo);
      maxs.push_back(hi);
    };
    const int64_t B = batch.batch, T = batch.seq;
    if (x.ndim() == 4) {
      const int64_t H = x.dim(1);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t i = 0; i < batch.lengths[b]; ++i)
            token(x.data() + ((b * H + h) * T + i) * T, batch.causal ? i + 1 : batch.lengths[b]);
    } else if (x.ndim() == 3) {
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < batch.lengths[b]; ++t) token(x.data() + (b * T + t) * x.cols(), x.cols());
    } else {
      for (int64_t r = 0; r < x.rows(); ++r) token(x.data() + r * x.cols(), x.cols());
    }
    auto& e = out_[point];
    e.mins.push_back(std::move(mins));
    e.maxs.push_back(std::move(maxs));
  }

 private:
  const Recipe& recipe_;
  std::map<std::string, TokenExtremes>& out_;
  std::map<std::string, std::optional<TensorQuantSpec>> specs_;
};

int default_ratios(int bits) { return bits >= 8 ? 10 : bits >= 6 ? 30 : 90; }

}  // namespace

std::pair<float, float> clipped_token_bounds(std::vector<float> token_min, std::vector<float> token_max, double p) {
  const double upper_q = quantile(token_max, p);
  const double lower_q = quantile(token_min, 1.0 - p);
  float upper = -INFINITY, lower = INFINITY;
  for (float v : token_max)
    if (v <= upper_q) upper = std::max(upper, v);
  for (float v : token_min)
    if (v >= lower_q) lower = std::min(lower, v);
  return {lower, upper};
}

TokenClippingResult token_wise_clipping_coarse(const Model& model, const Recipe& recipe,
                                               const std::vector<Batch>& batches, const TokenClippingOptions& o) {
  if (!recipe.activations) fail("recipe {} quantizes no activations: nothing to clip", recipe.name);
  if (batches.empty()) fail("token-wise clipping needs calibration batches");
  // FP pass: reference logits and every point's per-token extremes.
  std::map<std::string, TokenExtremes> extremes;
  std::vector<Tensor> reference;
  {
    Hooks hooks;
    hooks.add(std::make_shared<TokenExtremesHook>(recipe, extremes));
    for (const Batch& b : batches) reference.push_back(model.forward(b, &hooks));
  }
  const int ratios = o.ratios > 0 ? o.ratios : default_ratios(recipe.activations->bits);

  auto calibration_at = [&](double p) {
    Calibration c;
    c.recipe = recipe.name;
    for (const auto& [point, e] : extremes) {
      const TensorQuantSpec spec = *recipe.activation_spec(point);
      double lo = 0, hi = 0;
      for (size_t b = 0; b < e.mins.size(); ++b) {
        // Softmax outputs carry no outlier tokens to clip.
        const auto bounds = point.ends_with(".attn.probs")
                                ? std::make_pair(*std::min_element(e.mins[b].begin(), e.mins[b].end()),
                                                 *std::max_element(e.maxs[b].begin(), e.maxs[b].end()))
                                : clipped_token_bounds(e.mins[b], e.maxs[b], p);
        lo += bounds.first;
        hi += bounds.second;
      }
      lo /= e.mins.size();
      hi /= e.mins.size();
      c.points[point] = params_from_ranges(spec.bits, spec.symmetric, per_tensor(),
                                           {Range{static_cast<float>(lo), static_cast<float>(hi)}}, point);
    }
    return c;
  };

  TokenClippingResult r;
  double best = INFINITY;
  for (int i = 0; i < ratios; ++i) {
    const double p = 1.0 - o.step * i;
    if (p <= 0.5) break;
    const Calibration c = calibration_at(p);
    Hooks hooks;
    hooks.add(std::make_shared<FakeQuantHook>(c));
    double sq = 0;
    int64_t n = 0;
    for (size_t b = 0; b < batches.size(); ++b) {
      const Tensor q = model.forward(batches[b], &hooks);
      const Tensor& f = reference[b];
      const int64_t per_pos = f.cols();
      const int64_t T = batches[b].seq;
      for (int64_t s = 0; s < batches[b].batch; ++s) {
        const int64_t rows = f.ndim() == 3 ? batches[b].lengths[s] : 1;
        const int64_t base = f.ndim() == 3 ? s * T * per_pos : s * per_pos;
        for (int64_t k = 0; k < rows * per_pos; ++k) {
          const double d = double(q[base + k]) - f[base + k];
          sq += d * d;
        }
        n += rows * per_pos;
      }
    }
    const double mse = sq / n;
    r.grid.push_back(p);
    r.logits_mse.push_back(mse);
    if (mse < best) {
      best = mse;
      r.ratio = p;
      r.calibration = c;
    }
  }
  return r;
}

}  // namespace tquant
