#include "wquant/block_stats.h"

#include <cblas.h>
#include <fmt/format.h>

#include "core/error.h"
#include "wquant/hessian.h"
#include "wquant/serial_blas.h"

namespace tquant::wq {

BlockStatsHook::BlockStatsHook(const Model& model, int layer, bool attention_stats)
    : config_(model.config()), layer_(layer), attention_stats_(attention_stats) {
  const Block& b = model.blocks.at(layer);
  const int64_t D = config_.hidden;
  auto add = [&](const Linear& l, std::vector<std::string> readers) {
    inputs_[l.name + ".in"] = Input{std::move(readers), Tensor({l.in(), l.in()})};
  };
  add(b.q, {b.q.name, b.k.name, b.v.name});
  add(b.o, {b.o.name});
  if (config_.gated_ffn)
    add(b.gate, {b.gate.name, b.up.name});
  else
    add(b.up, {b.up.name});
  add(b.down, {b.down.name});
  attn_input_point_ = b.q.name + ".in";
  query_point_ = fmt::format("layers.{}.attn.query", layer);
  key_point_ = fmt::format("layers.{}.attn.key", layer);
  probs_point_ = fmt::format("layers.{}.attn.probs", layer);
  if (attention_stats_) {
    const int64_t dh = config_.head_dim;
    for (int g = 0; g < config_.kv_heads; ++g) {
      g_q_.emplace_back(Shape{dh, dh});
      g_k_.emplace_back(Shape{dh, dh});
      h_v_.emplace_back(Shape{D, D});
    }
  }
}

void BlockStatsHook::on_activation(const std::string& point, Tensor& x, const BatchInfo& batch) {
  if (batch.layer != layer_) return;
  const auto it = inputs_.find(point);
  if (it != inputs_.end()) {
    const int64_t T = batch.seq, C = x.cols();
    for (int b = 0; b < batch.batch; ++b)
      accumulate_xtx(it->second.sum, x.data() + b * T * C, batch.lengths[b], C, 1.f);
    if (point == attn_input_point_) {
      for (int b = 0; b < batch.batch; ++b) tokens_ += batch.lengths[b];
      if (attention_stats_) attn_input_ = x.clone();
    }
    return;
  }
  if (!attention_stats_) return;
  if (point == key_point_)
    accumulate_heads(x.data(), batch, config_.kv_heads, g_q_);
  else if (point == query_point_)
    accumulate_heads(x.data(), batch, config_.heads, g_k_);
  else if (point == probs_point_)
    accumulate_values(x, batch);
}

// x is [B, T, heads·dh]; head h belongs to KV group h / (heads / kv_heads).
void BlockStatsHook::accumulate_heads(const float* x, const BatchInfo& batch, int64_t heads, std::vector<Tensor>& out) {
  const int64_t T = batch.seq, dh = config_.head_dim, width = heads * dh;
  const int64_t per_group = heads / config_.kv_heads;
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < config_.kv_heads; ++g)
    for (int64_t h = g * per_group; h < (g + 1) * per_group; ++h)
      for (int b = 0; b < batch.batch; ++b)
        accumulate_xtx(out[g], x + b * T * width + h * dh, batch.lengths[b], dh, 1.f, width);
}

// Σ (A_h X)ᵀ(A_h X) per sequence over its unpadded block of A_h; padded keys have probability 0.
void BlockStatsHook::accumulate_values(const Tensor& probs, const BatchInfo& batch) {
  if (attn_input_.empty()) fail("block {}: attention probabilities arrived before the attention input", layer_);
  const int64_t T = batch.seq, D = config_.hidden, H = config_.heads;
  const int64_t per_group = H / config_.kv_heads;
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < config_.kv_heads; ++g) {
    SerialBlas serial;
    std::vector<float> y(static_cast<size_t>(T * D));
    for (int64_t h = g * per_group; h < (g + 1) * per_group; ++h)
      for (int b = 0; b < batch.batch; ++b) {
        const int64_t len = batch.lengths[b];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, D, len, 1.f,
                    probs.data() + (b * H + h) * T * T, T, attn_input_.data() + b * T * D, D, 0.f, y.data(), D);
        accumulate_xtx(h_v_[g], y.data(), len, D, 1.f);
      }
  }
  attn_input_ = Tensor();
}

BlockStatistics BlockStatsHook::finish() {
  if (tokens_ == 0) fail("block {}: no calibration tokens reached it", layer_);
  const float scale = 2.f / static_cast<float>(tokens_);
  auto scaled = [&](Tensor& t, float s) {
    for (int64_t i = 0; i < t.numel(); ++i) t[i] *= s;
  };
  BlockStatistics out;
  out.tokens = tokens_;
  for (auto& [point, input] : inputs_) {
    scaled(input.sum, scale);
    for (const auto& name : input.linears) out.H[name] = input.sum.clone();
  }
  const float per_group = static_cast<float>(config_.heads / config_.kv_heads);
  for (auto& t : g_q_) scaled(t, scale);
  for (auto& t : g_k_) scaled(t, scale / per_group);
  for (auto& t : h_v_) scaled(t, scale);
  out.G_Q = std::move(g_q_);
  out.G_K = std::move(g_k_);
  out.H_V = std::move(h_v_);
  return out;
}

}  // namespace tquant::wq
