// The one forward pass shared by every family. Hooks run at each named quantization point
// (docs/hooks.md); with no hooks registered no point name is ever built.
#include <cblas.h>
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <initializer_list>

#include "core/error.h"
#include "kernels/int8_linear.h"
#include "kernels/ops.h"
#include "kernels/qblock_formats.h"
#include "kernels/qgemv.h"
#include "kernels/qgemv_q8act.h"
#include "model/model.h"

namespace tquant {
namespace {

class Pass {
 public:
  Pass(const Model& m, const Batch& batch, const Hooks* hooks)
      : m_(m), c_(m.config()), hooks_(hooks && !hooks->empty() ? hooks : nullptr) {
    info_.batch = batch.batch;
    info_.seq = batch.seq;
    info_.ids = batch.ids.data();
    info_.lengths = batch.lengths.data();
    info_.causal = c_.is_causal();
  }

  void hook(int layer, const char* point, Tensor& x) {
    if (!hooks_) return;
    info_.layer = layer;
    hooks_->run(layer >= 0 ? fmt::format("layers.{}.{}", layer, point) : std::string(point), x, info_);
  }
  void hook_named(int layer, const std::string& name, const char* suffix, Tensor& x) {
    if (!hooks_) return;
    info_.layer = layer;
    hooks_->run(name + suffix, x, info_);
  }

  // xq: x already rounded to int8 blocks (shared_q8), for a layer that takes int8 activations.
  Tensor linear(int layer, const Linear& l, Tensor& x, const Q8Activations* xq = nullptr) {
    hook_named(layer, l.name, ".in", x);
    Shape shape = x.shape();
    shape.back() = l.out();
    Tensor y = Tensor::uninitialized(shape);
    const float* bias = l.bias.empty() ? nullptr : l.bias.data();
    if (x.cols() != l.in())
      fail("{}: input of width {} for a layer of {} inputs", l.name, x.cols(), l.in());
    if (l.int8) {
      int8_linear_forward(*l.int8, x.data(), x.rows(), x.cols(), bias, y.data(), l.name);
    } else if (l.packed) {
      Tensor scaled;
      const float* in = x.data();
      if (!l.input_scale.empty()) {
        scaled = x.clone();
        scale_columns_inplace(scaled.data(), scaled.rows(), scaled.cols(), l.input_scale.data());
        in = scaled.data();
      }
      if (l.q8_activations && xq)
        packed_matmul_q8act(*l.packed, *xq, bias, y.data());
      else if (l.q8_activations)
        packed_matmul_q8act(*l.packed, in, x.rows(), bias, y.data());
      else
        packed_matmul(*l.packed, in, x.rows(), bias, y.data());
    } else {
      linear_forward(x.data(), x.rows(), x.cols(), l.weight.data(), bias, l.out(), y.data());
    }
    hook_named(layer, l.name, ".out", y);
    return y;
  }

  // Layers that read the same input (q, k, v; gate, up) and all take int8 activations share one
  // rounding of it instead of one per layer; the result is the same. Not with hooks: a layer's
  // `.in` hook may change the input before the next layer reads it.
  // Null when the layers cannot share; else valid until the next call.
  const Q8Activations* shared_q8(const Tensor& x, std::initializer_list<const Linear*> layers) {
    if (hooks_) return nullptr;
    for (const Linear* l : layers)
      if (!l->packed || !l->q8_activations || l->int8 || !l->input_scale.empty() || l->in() != x.cols())
        return nullptr;
    quantize_activations_q8(x.data(), x.rows(), x.cols(), shared_input_);
    return &shared_input_;
  }

  Tensor norm(const Norm& n, const Tensor& x) {
    Tensor y = Tensor::uninitialized(x.shape());
    if (c_.norm == NormKind::RMSNorm)
      rms_norm(x.data(), x.rows(), x.cols(), n.gamma.data(), c_.norm_eps, y.data());
    else
      layer_norm(x.data(), x.rows(), x.cols(), n.gamma.data(), n.beta.empty() ? nullptr : n.beta.data(),
                 c_.norm_eps, y.data());
    return y;
  }

  void activate(Tensor& x, Activation a) {
    switch (a) {
      case Activation::SiLU: silu(x.data(), x.numel()); break;
      case Activation::GeLU: gelu_erf(x.data(), x.numel()); break;
      case Activation::GeLUTanh: gelu_tanh(x.data(), x.numel()); break;
      case Activation::ReLU: relu(x.data(), x.numel()); break;
    }
  }

  Tensor embed(const Batch& batch) {
    const int64_t B = batch.batch, T = batch.seq, D = c_.hidden;
    Tensor x = Tensor::uninitialized({B, T, D});
    for (int64_t i = 0; i < B * T; ++i) {
      const int32_t id = batch.ids[i];
      if (id < 0 || id >= c_.vocab_size)
        fail("token id {} at sequence {} position {} is outside the vocabulary (size {})", id, i / T, i % T,
             c_.vocab_size);
      if (!batch.type_ids.empty() && (batch.type_ids[i] < 0 || batch.type_ids[i] >= std::max(1, c_.type_vocab_size)))
        fail("token type id {} at sequence {} position {} is outside 0..{}", batch.type_ids[i], i / T, i % T,
             std::max(1, c_.type_vocab_size) - 1);
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < B * T; ++i) {
      float* row = x.data() + i * D;
      if (m_.token_embedding_packed)
        m_.token_embedding_packed->dequantize_row(batch.ids[i], row);
      else
        std::memcpy(row, m_.token_embedding.data() + int64_t{batch.ids[i]} * D, sizeof(float) * D);
      if (!m_.position_embedding.empty()) {
        // Right padding only, so position = index in the sequence (OPT's cumulative-mask
        // positions reduce to the same); OPT adds its offset of 2.
        const float* p = m_.position_embedding.data() + (i % T + c_.position_offset) * D;
        for (int64_t j = 0; j < D; ++j) row[j] += p[j];
      }
      if (!m_.type_embedding.empty()) {
        const int32_t type = batch.type_ids.empty() ? 0 : batch.type_ids[i];
        const float* p = m_.type_embedding.data() + int64_t{type} * D;
        for (int64_t j = 0; j < D; ++j) row[j] += p[j];
      }
    }
    return x;
  }

  Tensor attention(int layer, const Block& b, Tensor& h) {
    const int64_t B = info_.batch, T = info_.seq, H = c_.heads, KV = c_.kv_heads, dh = c_.head_dim;
    const int64_t qw = H * dh, kw = KV * dh, group = H / KV;
    const Q8Activations* shared = shared_q8(h, {&b.q, &b.k, &b.v});
    Tensor q = linear(layer, b.q, h, shared);
    Tensor k = linear(layer, b.k, h, shared);
    Tensor v = linear(layer, b.v, h, shared);
    if (c_.positions == Positions::Rotary) {
      rope_inplace(q.data(), B, T, H, dh, c_.rope_theta);
      rope_inplace(k.data(), B, T, KV, dh, c_.rope_theta);
    }
    hook(layer, "attn.query", q);
    hook(layer, "attn.key", k);

    Tensor scores = Tensor::uninitialized({B, H, T, T});
#pragma omp parallel for schedule(static)
    for (int64_t bh = 0; bh < B * H; ++bh) {
      const int64_t bi = bh / H, hd = bh % H;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dh, 1.f, q.data() + bi * T * qw + hd * dh, qw,
                  k.data() + bi * T * kw + (hd / group) * dh, kw, 0.f, scores.data() + bh * T * T, T);
    }
    hook(layer, "attn.scores", scores);

    // Scale, mask and softmax in one pass per row; only the visible keys are exponentiated.
    const float scale = 1.f / std::sqrt(static_cast<float>(dh));
    const bool causal = c_.is_causal();
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < B * H * T; ++row) {
      const int64_t bi = row / (H * T), i = row % T;
      const int64_t visible = causal ? std::min<int64_t>(info_.lengths[bi], i + 1) : info_.lengths[bi];
      softmax_prefix(scores.data() + row * T, T, visible, scale);
    }
    Tensor& probs = scores;
    hook(layer, "attn.probs", probs);

    Tensor context = Tensor::uninitialized({B, T, qw});
#pragma omp parallel for schedule(static)
    for (int64_t bh = 0; bh < B * H; ++bh) {
      const int64_t bi = bh / H, hd = bh % H;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dh, T, 1.f, probs.data() + bh * T * T, T,
                  v.data() + bi * T * kw + (hd / group) * dh, kw, 0.f, context.data() + bi * T * qw + hd * dh, qw);
    }
    hook(layer, "attn.context", context);
    return linear(layer, b.o, context);
  }

  Tensor ffn(int layer, const Block& b, Tensor& h) {
    if (c_.gated_ffn) {
      const Q8Activations* shared = shared_q8(h, {&b.gate, &b.up});
      Tensor g = linear(layer, b.gate, h, shared);
      Tensor u = linear(layer, b.up, h, shared);
      activate(g, c_.activation);
      float* gp = g.data();
      const float* up = u.data();
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < g.numel(); ++i) gp[i] *= up[i];
      hook(layer, "ffn.act.out", g);
      return linear(layer, b.down, g);
    }
    Tensor u = linear(layer, b.up, h);
    activate(u, c_.activation);
    hook(layer, "ffn.act.out", u);
    return linear(layer, b.down, u);
  }

  // x[:, j] *= scale[j]; nothing when the scale is empty.
  static void scale_channels(Tensor& x, const Tensor& scale) {
    if (!scale.empty()) scale_columns_inplace(x.data(), x.rows(), x.cols(), scale.data());
  }

  void residual(int layer, const char* point, Tensor& x, const Tensor& branch) {
    add_inplace(x.data(), branch.data(), x.numel());
    hook(layer, point, x);
  }

  Tensor run(const Batch& batch) {
    Tensor x = embed_stage(batch);
    for (int i = 0; i < c_.layers; ++i) block(i, x);
    return head_stage(x);
  }

  Tensor embed_stage(const Batch& batch) {
    Tensor x = embed(batch);
    hook(-1, "embed.out", x);
    if (c_.embedding_norm) {
      x = norm(m_.embedding_norm, x);
      hook(-1, "embed.norm.out", x);
    }
    return x;
  }

  void block(int i, Tensor& x) {
    const Block& b = m_.blocks[i];
    if (c_.pre_norm) {
      Tensor h = norm(b.attn_norm, x);
      hook(i, "attn.norm.out", h);
      residual(i, "attn.residual_sum", x, attention(i, b, h));
      h = norm(b.ffn_norm, x);
      hook(i, "ffn.norm.out", h);
      residual(i, "ffn.residual_sum", x, ffn(i, b, h));
    } else {
      const Norm& producer = i == 0 ? m_.embedding_norm : m_.blocks[i - 1].ffn_norm;
      Tensor a = attention(i, b, x);
      scale_channels(x, producer.residual_scale);
      residual(i, "attn.residual_sum", x, a);
      x = norm(b.attn_norm, x);
      hook(i, "attn.norm.out", x);
      Tensor f = ffn(i, b, x);
      scale_channels(x, b.attn_norm.residual_scale);
      residual(i, "ffn.residual_sum", x, f);
      x = norm(b.ffn_norm, x);
      hook(i, "ffn.norm.out", x);
    }
  }

  Tensor head_stage(Tensor& x) {
    if (c_.pre_norm && c_.final_norm) {
      x = norm(m_.final_norm, x);
      hook(-1, "final_norm.out", x);
    }
    return head(x);
  }

  Tensor head(Tensor& x) {
    const int64_t B = info_.batch, T = info_.seq, D = c_.hidden;
    Tensor out;
    switch (c_.head) {
      case Head::None:
        return x;
      case Head::CausalLM:
        out = linear(-1, m_.lm_head, x);
        break;
      case Head::MaskedLM: {
        Tensor t = linear(-1, m_.mlm_transform, x);
        activate(t, c_.activation);
        hook(-1, "mlm.act.out", t);
        t = norm(m_.mlm_norm, t);
        hook(-1, "mlm.norm.out", t);
        out = linear(-1, m_.mlm_decoder, t);
        break;
      }
      case Head::SequenceClassification: {
        Tensor first({B, D});
        for (int64_t b = 0; b < B; ++b) std::memcpy(first.data() + b * D, x.data() + b * T * D, sizeof(float) * D);
        Tensor pooled = linear(-1, m_.pooler, first);
        tanh_inplace(pooled.data(), pooled.numel());
        hook(-1, "pooler.out", pooled);
        out = linear(-1, m_.classifier, pooled);
        break;
      }
    }
    hook(-1, "logits", out);
    return out;
  }

 private:
  const Model& m_;
  const ModelConfig& c_;
  const Hooks* hooks_;
  BatchInfo info_;
  Q8Activations shared_input_;  // shared_q8's storage, reused by every layer of the pass
};

// Non-finite outputs mean non-finite activations somewhere upstream: report where it surfaced.
void check_finite(const Tensor& out, const Batch& batch) {
  const int64_t n = out.numel();
  int64_t bad = -1;
#pragma omp parallel for schedule(static) reduction(max : bad)
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(out[i]) && i > bad) bad = i;
  if (bad < 0) return;
  const int64_t per_seq = n / batch.batch;
  const int64_t b = bad / per_seq;
  if (out.ndim() == 3) {
    const int64_t t = (bad % per_seq) / out.dim(2);
    if (t >= batch.lengths[b]) return;  // padding positions carry no meaning
    fail("the forward pass produced a non-finite value ({}) at sequence {} position {}", out[bad], b, t);
  }
  fail("the forward pass produced a non-finite value ({}) for sequence {}", out[bad], b);
}

// Fills in default lengths and checks the batch; `storage` keeps a defaulted copy alive.
const Batch& checked_batch(const Model& m, const Batch& batch_in, Batch& storage) {
  const Batch* batch = &batch_in;
  if (batch_in.lengths.empty()) {
    storage = batch_in;
    storage.lengths.assign(batch_in.batch, batch_in.seq);
    batch = &storage;
  }
  if (batch->batch <= 0 || batch->seq <= 0) fail("cannot run the model on an empty batch");
  if (static_cast<int64_t>(batch->ids.size()) != int64_t{batch->batch} * batch->seq)
    fail("batch holds {} ids, expected {} x {}", batch->ids.size(), batch->batch, batch->seq);
  if (!batch->type_ids.empty() && batch->type_ids.size() != batch->ids.size())
    fail("batch holds {} token type ids for {} ids", batch->type_ids.size(), batch->ids.size());
  for (int b = 0; b < batch->batch; ++b)
    if (batch->lengths[b] < 1 || batch->lengths[b] > batch->seq)
      fail("sequence {} has length {}, outside 1..{}", b, batch->lengths[b], batch->seq);
  if (m.config().positions == Positions::Learned && batch->seq > m.config().max_positions)
    fail("{}: sequences of {} tokens exceed the model's {} positions", m.dir().string(), batch->seq,
         m.config().max_positions);
  return *batch;
}

void check_residual(const Model& m, const Tensor& x, const Batch& batch) {
  if (x.numel() != int64_t{batch.batch} * batch.seq * m.config().hidden)
    fail("residual stream of shape {} does not match a batch of {} x {} and hidden size {}", shape_str(x.shape()),
         batch.batch, batch.seq, m.config().hidden);
}

}  // namespace

Tensor Model::forward(const Batch& batch_in, const Hooks* hooks) const {
  Batch storage;
  const Batch& batch = checked_batch(*this, batch_in, storage);
  Pass pass(*this, batch, hooks);
  Tensor out = pass.run(batch);
  check_finite(out, batch);
  return out;
}

Tensor Model::embed(const Batch& batch_in, const Hooks* hooks) const {
  Batch storage;
  const Batch& batch = checked_batch(*this, batch_in, storage);
  return Pass(*this, batch, hooks).embed_stage(batch);
}

void Model::run_block(int layer, Tensor& x, const Batch& batch_in, const Hooks* hooks) const {
  if (layer < 0 || layer >= config_.layers) fail("block {} is outside 0..{}", layer, config_.layers - 1);
  Batch storage;
  const Batch& batch = checked_batch(*this, batch_in, storage);
  check_residual(*this, x, batch);
  Pass(*this, batch, hooks).block(layer, x);
}

Tensor Model::run_head(Tensor& x, const Batch& batch_in, const Hooks* hooks) const {
  Batch storage;
  const Batch& batch = checked_batch(*this, batch_in, storage);
  check_residual(*this, x, batch);
  Tensor out = Pass(*this, batch, hooks).head_stage(x);
  check_finite(out, batch);
  return out;
}

}  // namespace tquant
