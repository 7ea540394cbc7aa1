#include "train/quant_graph.h"

#include <cstring>

#include "core/error.h"

namespace tquant::train {

QuantizedWeightsScope::QuantizedWeightsScope(Model& model, const Recipe& recipe,
                                             const std::map<std::string, QuantParams>& fixed) {
  for (const QuantizedTensor& t : quantized_tensors(model, recipe)) latent_.emplace_back(t.tensor, *t.tensor);
  described_ = quantize_weights(model, recipe, fixed);
}

QuantizedWeightsScope::~QuantizedWeightsScope() {
  for (auto& [slot, latent] : latent_) *slot = latent;
}

Calibration initial_quantizers(Model& model, const Recipe& recipe, const std::vector<Batch>& batches) {
  std::map<std::string, QuantParams> weights;
  for (const QuantizedTensor& t : quantized_tensors(model, recipe)) weights[t.name] = estimate_weight_params(t);
  Calibration c;
  {
    const QuantizedWeightsScope quantized(model, recipe, weights);
    if (recipe.activations) c = calibrate_activations(model, recipe, batches);
    c.weights = quantized.described();
  }
  c.recipe = recipe.name;
  c.weight_params = weights;
  return c;
}

QuantGraph::QuantGraph(Model& model, const std::map<std::string, QuantParams>& activations,
                       const std::map<std::string, QuantParams>& weights, bool learn_activations, bool learn_weights) {
  for (const auto& [point, p] : activations) {
    if (point.ends_with(".in"))
      fail("activation point {}: quantizing a linear's input is not supported in training; quantize the producer's "
           "output point instead", point);
    activations_.emplace(point, LearnedQuantizer::from_params(point, p, learn_activations));
  }
  std::map<std::string, std::pair<Tensor*, bool>> slots;  // name -> (tensor, is a table)
  for (Linear* l : model.linears()) slots[l->name] = {&l->weight, false};
  for (const auto& [name, table] : model.embedding_tables()) slots[name] = {table, true};
  for (const auto& [name, p] : weights) {
    const auto it = slots.find(name);
    if (it == slots.end()) fail("weight quantizer for {}: the model has no such linear or embedding table", name);
    WeightState w;
    w.slot = it->second.first;
    w.table = it->second.second;
    w.q = LearnedQuantizer::from_params(name + ".weight", p, learn_weights);
    check_fits(p, w.slot->dim(0), w.slot->dim(1), w.q.name);
    w.quantized = Tensor(w.slot->shape());
    w.grad = Tensor(w.slot->shape());
    weights_.emplace(name, std::move(w));
  }
  for (auto& [point, q] : activations_) add_parameters(q);
  for (auto& [name, w] : weights_) add_parameters(w.q);
}

void QuantGraph::add_parameters(LearnedQuantizer& q) {
  if (!q.learn || q.dynamic()) return;
  Tensor ds(q.scale.shape()), dz;
  params_.push_back({"quant." + q.name + ".scale", q.scale, ds, false});
  if (!q.zero_point.empty()) {
    dz = Tensor(q.zero_point.shape());
    params_.push_back({"quant." + q.name + ".zero_point", q.zero_point, dz, false});
  }
  grads_[q.name] = {ds, dz};
}

void QuantGraph::zero_grad() {
  for (Parameter& p : params_) std::memset(p.grad.data(), 0, sizeof(float) * p.grad.numel());
}

void QuantGraph::constrain() {
  for (auto& [point, q] : activations_) q.constrain();
  for (auto& [name, w] : weights_) w.q.constrain();
}

void QuantGraph::forward(const std::string& point, Tensor& x) {
  const auto it = activations_.find(point);
  if (it == activations_.end()) return;
  if (keep_inputs_) saved_[point] = x.clone();
  learned_quantize_forward(it->second, x.data(), x.rows(), x.cols());
}

void QuantGraph::backward(const std::string& point, Tensor& d) {
  const auto it = activations_.find(point);
  if (it == activations_.end()) return;
  const Tensor& x = saved_input(point);
  if (x.numel() != d.numel()) fail("internal: gradient of {} has shape {}, its input {}", point, shape_str(d.shape()), shape_str(x.shape()));
  const auto g = grads_.find(it->second.name);
  float* ds = g == grads_.end() ? nullptr : g->second.first.data();
  float* dz = g == grads_.end() || g->second.second.empty() ? nullptr : g->second.second.data();
  LearnedQuantizer q = it->second;
  if (!ds) q.learn = false;
  learned_quantize_backward(q, x.data(), x.rows(), x.cols(), d.data(), ds, dz);
}

const Tensor& QuantGraph::saved_input(const std::string& point) const {
  const auto it = saved_.find(point);
  if (it == saved_.end()) fail("internal: no forward input kept for point {}", point);
  return it->second;
}

void QuantGraph::begin_pass(bool backward) {
  keep_inputs_ = backward;
  saved_.clear();
  for (auto& [name, w] : weights_) {
    std::memcpy(w.quantized.data(), w.slot->data(), sizeof(float) * w.quantized.numel());
    learned_quantize_forward(w.q, w.quantized.data(), w.quantized.rows(), w.quantized.cols());
    std::memset(w.grad.data(), 0, sizeof(float) * w.grad.numel());
  }
}

const float* QuantGraph::weight(const Linear& l) const {
  const auto it = weights_.find(l.name);
  return it == weights_.end() ? l.weight.data() : it->second.quantized.data();
}

float* QuantGraph::weight_grad(const std::string& name) {
  const auto it = weights_.find(name);
  if (it == weights_.end()) fail("internal: {} has no weight quantizer", name);
  return it->second.grad.data();
}

QuantGraph::QuantizedTables::QuantizedTables(QuantGraph& g) : g_(g) {
  for (auto& [name, w] : g_.weights_)
    if (w.table) {
      w.latent = *w.slot;
      *w.slot = w.quantized;
    }
}

QuantGraph::QuantizedTables::~QuantizedTables() {
  for (auto& [name, w] : g_.weights_)
    if (w.table && !w.latent.empty()) *w.slot = std::move(w.latent), w.latent = Tensor();
}

void QuantGraph::end_pass(const std::function<float*(const Tensor&)>& latent_grad) {
  for (auto& [name, w] : weights_) {
    const auto g = grads_.find(w.q.name);
    LearnedQuantizer q = w.q;
    float* ds = g == grads_.end() ? nullptr : g->second.first.data();
    float* dz = g == grads_.end() || g->second.second.empty() ? nullptr : g->second.second.data();
    if (!ds) q.learn = false;
    learned_quantize_backward(q, w.slot->data(), w.grad.rows(), w.grad.cols(), w.grad.data(), ds, dz);
    float* dw = latent_grad(*w.slot);
    const float* gq = w.grad.data();
    const int64_t n = w.grad.numel();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) dw[i] += gq[i];
  }
  saved_.clear();
}

std::map<std::string, QuantParams> QuantGraph::activation_params() const {
  std::map<std::string, QuantParams> out;
  for (const auto& [point, q] : activations_) out[point] = q.params();
  return out;
}

std::map<std::string, QuantParams> QuantGraph::weight_params() const {
  std::map<std::string, QuantParams> out;
  for (const auto& [name, w] : weights_) out[name] = w.q.params();
  return out;
}

}  // namespace tquant::train
