#include "train/optimizer.h"

#include <cmath>
#include <cstring>

#include "core/error.h"

namespace tquant::train {

AdamW::AdamW(std::vector<Parameter>& params, AdamWOptions options) : params_(params), o_(options) {
  for (const Parameter& p : params_) {
    m_.emplace_back(p.value.shape());
    v_.emplace_back(p.value.shape());
  }
}

void AdamW::step(float lr) {
  ++t_;
  const double bc1 = 1.0 - std::pow(static_cast<double>(o_.beta1), static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(static_cast<double>(o_.beta2), static_cast<double>(t_));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float b1 = o_.beta1, b2 = o_.beta2, eps = o_.eps;
  for (size_t i = 0; i < params_.size(); ++i) {
    Parameter& p = params_[i];
    const float decay = p.decay ? 1.f - lr * o_.weight_decay : 1.f;
    float* w = p.value.data();
    const float* g = p.grad.data();
    float* m = m_[i].data();
    float* v = v_[i].data();
    const int64_t n = p.value.numel();
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < n; ++j) {
      w[j] *= decay;
      m[j] = b1 * m[j] + (1.f - b1) * g[j];
      v[j] = b2 * v[j] + (1.f - b2) * g[j] * g[j];
      w[j] -= step_size * m[j] / (std::sqrt(v[j]) / bc2_sqrt + eps);
    }
  }
}

void AdamW::restore(int64_t steps, const std::vector<Tensor>& m, const std::vector<Tensor>& v) {
  if (m.size() != params_.size() || v.size() != params_.size())
    fail("optimizer state holds {} / {} moments for {} parameters", m.size(), v.size(), params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    if (m[i].shape() != params_[i].value.shape() || v[i].shape() != params_[i].value.shape())
      fail("optimizer state for {} has shape {}, the parameter {}", params_[i].name, shape_str(m[i].shape()),
           shape_str(params_[i].value.shape()));
    std::memcpy(m_[i].data(), m[i].data(), sizeof(float) * m[i].numel());
    std::memcpy(v_[i].data(), v[i].data(), sizeof(float) * v[i].numel());
  }
  t_ = steps;
}

Decay parse_decay(const std::string& name) {
  if (name == "linear") return Decay::Linear;
  if (name == "cosine") return Decay::Cosine;
  if (name == "constant") return Decay::Constant;
  fail("unknown learning-rate decay \"{}\" (use linear, cosine or constant)", name);
}

float Schedule::lr_at(int64_t step) const {
  if (step < warmup_steps) return peak_lr * static_cast<float>(step) / static_cast<float>(warmup_steps);
  if (decay == Decay::Constant) return peak_lr;
  const double progress = static_cast<double>(step - warmup_steps) / std::max<int64_t>(1, total_steps - warmup_steps);
  if (decay == Decay::Linear) return static_cast<float>(peak_lr * std::max(0.0, 1.0 - progress));
  return static_cast<float>(peak_lr * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress))));
}

double global_grad_norm(const std::vector<Parameter>& params) {
  double total = 0;
  for (const Parameter& p : params) {
    const float* g = p.grad.data();
    double s = 0;
    for (int64_t j = 0; j < p.grad.numel(); ++j) s += static_cast<double>(g[j]) * g[j];
    total += s;
  }
  return std::sqrt(total);
}

double clip_grad_norm(std::vector<Parameter>& params, double max_norm) {
  const double norm = global_grad_norm(params);
  if (!std::isfinite(norm)) fail("the gradient is not finite (norm {}); lower the learning rate", norm);
  if (max_norm > 0 && norm > max_norm) {
    const float factor = static_cast<float>(max_norm / (norm + 1e-6));
    for (Parameter& p : params) {
      float* g = p.grad.data();
      const int64_t n = p.grad.numel();
#pragma omp parallel for schedule(static)
      for (int64_t j = 0; j < n; ++j) g[j] *= factor;
    }
  }
  return norm;
}

}  // namespace tquant::train
