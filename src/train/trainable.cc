#include "train/trainable.h"

#include <fmt/format.h>

#include <cstring>
#include <functional>

#include "core/counter_rng.h"
#include "core/error.h"
#include "kernels/ops.h"
#include "train/attention_grads.h"
#include "train/layer_grads.h"
#include "train/lm_batches.h"
#include "train/quant_graph.h"

namespace tquant::train {
namespace {

// Dropout sites, for the mask streams.
enum Site : uint64_t { kEmbedding = 1, kProbs, kAttnOut, kFfnOut, kPooler };

struct NormState {
  Tensor in;
  std::vector<float> mean, rstd;
};

struct BlockState {
  Tensor x0;          // block input
  NormState n1, n2;   // pre-norm: on x0 and x1; post-norm: on the two residual sums
  Tensor h1;          // attention input: norm1(x0) (pre-norm) or x0 (post-norm)
  Tensor q, k, v, probs, ctx;  // probs as the context used them (quantized in QAT)
  Tensor x1;          // after attention: x0 + attn (pre-norm) or LN1(x0 + attn) (post-norm)
  Tensor h2;          // FFN input: norm2(x1) (pre-norm) or x1 (post-norm)
  Tensor g, u, a;     // gate and up projections (before the activation), FFN hidden
};

Tensor copy_of(const Tensor& t) { return t.clone(); }

class Pass {
 public:
  Pass(TrainableModel& tm, const Batch& batch, const Dropout& dropout, uint64_t key, bool backward,
       std::function<float*(const Tensor&)> grad, QuantGraph* quant)
      : m_(tm.model()), c_(m_.config()), batch_(batch), drop_(dropout), key_(key), backward_(backward),
        grad_(std::move(grad)), quant_(quant) {
    N_ = int64_t{batch.batch} * batch.seq;
    shape_.batch = batch.batch;
    shape_.seq = batch.seq;
    shape_.heads = c_.heads;
    shape_.kv_heads = c_.kv_heads;
    shape_.head_dim = c_.head_dim;
    shape_.causal = c_.is_causal();
    shape_.lengths = batch.lengths.data();
  }

  LossSum run(const Targets& targets, float grad_scale, Tensor* logits) {
    logits_out_ = logits;
    if (quant_) quant_->begin_pass(backward_);
    Tensor x = embed_forward();
    blocks_.resize(c_.layers);
    for (int i = 0; i < c_.layers; ++i) x = block_forward(i, x);
    Tensor dx;
    const LossSum loss = head(x, targets, grad_scale, &dx);
    if (!backward_) return loss;
    for (int i = c_.layers - 1; i >= 0; --i) dx = block_backward(i, dx);
    embed_backward(dx);
    if (quant_) quant_->end_pass(grad_);
    return loss;
  }

 private:
  uint64_t site_key(int layer, Site site) const { return stream_key(key_, static_cast<uint64_t>(layer + 1), site); }

  void dropout(Tensor& t, float p, int layer, Site site) {
    if (p > 0.f) dropout_inplace(t.data(), t.numel(), p, site_key(layer, site));
  }

  // ---- fake quantization (QAT) -----------------------------------------------------------

  // The point's name as the inference forward hooks it (docs/hooks.md); "" when not quantized.
  std::string quantized_point(int layer, const char* point) const {
    if (!quant_) return {};
    std::string name = layer >= 0 ? fmt::format("layers.{}.{}", layer, point) : std::string(point);
    return quant_->quantizes(name) ? name : std::string();
  }
  void fq(int layer, const char* point, Tensor& x) {
    if (const std::string n = quantized_point(layer, point); !n.empty()) quant_->forward(n, x);
  }
  void fq_back(int layer, const char* point, Tensor& d) {
    if (const std::string n = quantized_point(layer, point); !n.empty()) quant_->backward(n, d);
  }

  // ---- primitives -------------------------------------------------------------------------

  const float* weight_of(const Linear& l) const { return quant_ ? quant_->weight(l) : l.weight.data(); }
  // Where the gradient of a weight (linear or embedding table) goes: dŴ when QAT quantizes it.
  float* weight_grad(const std::string& name, const Tensor& latent) {
    return quant_ && quant_->quantizes_weight(name) ? quant_->weight_grad(name) : grad_(latent);
  }

  Tensor linear(const Linear& l, const Tensor& x) {
    Shape shape = x.shape();
    shape.back() = l.out();
    Tensor y = Tensor::uninitialized(shape);
    linear_forward(x.data(), x.rows(), x.cols(), weight_of(l), l.bias.empty() ? nullptr : l.bias.data(), l.out(),
                   y.data());
    fq(-1, (l.name + ".out").c_str(), y);
    return y;
  }
  // dy (of the output, as quantized) becomes that of the unquantized output; then dx (written,
  // or added when `accumulate`) and the layer's parameter gradients.
  void linear_back(const Linear& l, const Tensor& x, Tensor& dy, Tensor& dx, bool accumulate) {
    fq_back(-1, (l.name + ".out").c_str(), dy);
    if (dx.empty()) dx = Tensor::uninitialized(x.shape()), accumulate = false;
    float* dw = weight_grad(l.name, l.weight);
    linear_backward(x.data(), x.rows(), x.cols(), weight_of(l), l.out(), dy.data(), dx.data(), accumulate, dw,
                    grad_(l.bias));
  }

  Tensor norm(const Norm& n, const Tensor& x, NormState& st) {
    Tensor y = Tensor::uninitialized(x.shape());
    const int64_t rows = x.rows(), d = x.cols();
    st.in = x;
    st.rstd.resize(rows);
    if (c_.norm == NormKind::RMSNorm) {
      rms_norm(x.data(), rows, d, n.gamma.data(), c_.norm_eps, y.data(), st.rstd.data());
    } else {
      st.mean.resize(rows);
      layer_norm(x.data(), rows, d, n.gamma.data(), n.beta.empty() ? nullptr : n.beta.data(), c_.norm_eps, y.data(),
                 st.mean.data(), st.rstd.data());
    }
    return y;
  }
  void norm_back(const Norm& n, const NormState& st, const Tensor& dy, Tensor& dx, bool accumulate) {
    if (dx.empty()) dx = Tensor::uninitialized(st.in.shape()), accumulate = false;
    const int64_t rows = st.in.rows(), d = st.in.cols();
    if (c_.norm == NormKind::RMSNorm)
      rms_norm_backward(st.in.data(), st.rstd.data(), rows, d, n.gamma.data(), dy.data(), dx.data(), accumulate,
                        grad_(n.gamma));
    else
      layer_norm_backward(st.in.data(), st.mean.data(), st.rstd.data(), rows, d, n.gamma.data(), dy.data(),
                          dx.data(), accumulate, grad_(n.gamma), grad_(n.beta));
  }

  void activate(Tensor& x) {
    switch (c_.activation) {
      case Activation::SiLU: silu(x.data(), x.numel()); break;
      case Activation::GeLU: gelu_erf(x.data(), x.numel()); break;
      case Activation::GeLUTanh: gelu_tanh(x.data(), x.numel()); break;
      case Activation::ReLU: relu(x.data(), x.numel()); break;
    }
  }

  // Gamma Migration's residual shortcut (post-norm): the producer's output ⊙ its residual scale.
  static void scale_channels(Tensor& x, const Tensor& scale) {
    if (!scale.empty()) scale_columns_inplace(x.data(), x.rows(), x.cols(), scale.data());
  }

  static Tensor sum(const Tensor& a, const Tensor& b) {
    Tensor y = a.clone();
    add_inplace(y.data(), b.data(), y.numel());
    return y;
  }

  // ---- embeddings -------------------------------------------------------------------------

  Tensor embed_forward() {
    // Model::embed validates the ids and sums the tables; the hook keeps the sum that the
    // embedding LayerNorm (BERT) normalises.
    struct Capture : Hook {
      Tensor sum;
      void on_activation(const std::string& point, Tensor& x, const BatchInfo&) override {
        if (point == "embed.out") sum = x.clone();
      }
    };
    auto capture = std::make_shared<Capture>();
    Hooks hooks;
    hooks.add(capture);
    Tensor x;
    if (quant_) {
      const QuantGraph::QuantizedTables quantized(*quant_);
      x = m_.embed(batch_, &hooks);
    } else {
      x = m_.embed(batch_, &hooks);
    }
    if (c_.embedding_norm) {
      fq(-1, "embed.out", capture->sum);
      x = norm(m_.embedding_norm, capture->sum, embed_norm_);
      fq(-1, "embed.norm.out", x);
      dropout(x, drop_.hidden, -1, kEmbedding);
    } else {
      fq(-1, "embed.out", x);
    }
    return x;
  }

  void embed_backward(Tensor& dx) {
    const int64_t D = c_.hidden, T = batch_.seq;
    Tensor de;
    if (c_.embedding_norm) {
      dropout(dx, drop_.hidden, -1, kEmbedding);
      fq_back(-1, "embed.norm.out", dx);
      norm_back(m_.embedding_norm, embed_norm_, dx, de, false);
    } else {
      de = dx;
    }
    fq_back(-1, "embed.out", de);
    embedding_backward(batch_.ids.data(), N_, D, de.data(), weight_grad("embed.tokens", m_.token_embedding));
    if (!m_.position_embedding.empty()) {
      std::vector<int32_t> pos(N_);
      for (int64_t i = 0; i < N_; ++i) pos[i] = static_cast<int32_t>(i % T + c_.position_offset);
      embedding_backward(pos.data(), N_, D, de.data(), weight_grad("embed.positions", m_.position_embedding));
    }
    if (!m_.type_embedding.empty()) {
      std::vector<int32_t> types(N_, 0);
      if (!batch_.type_ids.empty()) types = batch_.type_ids;
      embedding_backward(types.data(), N_, D, de.data(), weight_grad("embed.types", m_.type_embedding));
    }
  }

  // ---- blocks -----------------------------------------------------------------------------

  Tensor attention_forward_(int layer, const Block& b, BlockState& s) {
    s.q = linear(b.q, s.h1);
    s.k = linear(b.k, s.h1);
    s.v = linear(b.v, s.h1);
    if (c_.positions == Positions::Rotary) {
      rope_inplace(s.q.data(), batch_.batch, batch_.seq, c_.heads, c_.head_dim, c_.rope_theta);
      rope_inplace(s.k.data(), batch_.batch, batch_.seq, c_.kv_heads, c_.head_dim, c_.rope_theta);
    }
    fq(layer, "attn.query", s.q);
    fq(layer, "attn.key", s.k);
    s.probs = Tensor::uninitialized({batch_.batch, c_.heads, batch_.seq, batch_.seq});
    s.ctx = Tensor::uninitialized(s.q.shape());
    const AttentionQuant aq = attention_quant(layer, false);
    train::attention_forward(shape_, s.q.data(), s.k.data(), s.v.data(), s.probs.data(), s.ctx.data(), drop_.attention,
                             site_key(layer, kProbs), &aq);
    fq(layer, "attn.context", s.ctx);
    Tensor o = linear(b.o, s.ctx);
    dropout(o, drop_.hidden, layer, kAttnOut);
    return o;
  }

  // The scores and probabilities quantizers of a layer, as attention callbacks (none when the
  // graph does not quantize them).
  AttentionQuant attention_quant(int layer, bool for_backward) {
    AttentionQuant aq;
    const Shape shape = {batch_.batch, c_.heads, batch_.seq, batch_.seq};
    auto view = [shape](float* p) { return Tensor::view(p, shape, nullptr); };
    if (std::string n = quantized_point(layer, "attn.scores"); !n.empty()) {
      aq.scores = [this, n, view](float* p) { Tensor t = view(p); quant_->forward(n, t); };
      aq.scores_backward = [this, n, view](float* d) { Tensor t = view(d); quant_->backward(n, t); };
    }
    if (std::string n = quantized_point(layer, "attn.probs"); !n.empty()) {
      aq.probs = [this, n, view](float* p) { Tensor t = view(p); quant_->forward(n, t); };
      aq.probs_backward = [this, n, view](float* d) { Tensor t = view(d); quant_->backward(n, t); };
      if (for_backward) aq.softmax = quant_->saved_input(n).data();
    }
    return aq;
  }

  // d(attention output) → d(attention input), accumulated into dh.
  void attention_backward_(int layer, const Block& b, const BlockState& s, Tensor& dout, Tensor& dh) {
    dropout(dout, drop_.hidden, layer, kAttnOut);
    Tensor dctx;
    linear_back(b.o, s.ctx, dout, dctx, false);
    fq_back(layer, "attn.context", dctx);
    Tensor dq = Tensor::uninitialized(s.q.shape()), dk = Tensor::uninitialized(s.k.shape()),
           dv = Tensor::uninitialized(s.v.shape());
    const AttentionQuant aq = attention_quant(layer, true);
    train::attention_backward(shape_, s.q.data(), s.k.data(), s.v.data(), s.probs.data(), dctx.data(), dq.data(),
                              dk.data(), dv.data(), drop_.attention, site_key(layer, kProbs), &aq);
    fq_back(layer, "attn.query", dq);
    fq_back(layer, "attn.key", dk);
    if (c_.positions == Positions::Rotary) {
      rope_backward_inplace(dq.data(), batch_.batch, batch_.seq, c_.heads, c_.head_dim, c_.rope_theta);
      rope_backward_inplace(dk.data(), batch_.batch, batch_.seq, c_.kv_heads, c_.head_dim, c_.rope_theta);
    }
    linear_back(b.q, s.h1, dq, dh, true);
    linear_back(b.k, s.h1, dk, dh, true);
    linear_back(b.v, s.h1, dv, dh, true);
  }

  Tensor ffn_forward(int layer, const Block& b, BlockState& s) {
    if (c_.gated_ffn) {
      s.g = linear(b.gate, s.h2);
      s.u = linear(b.up, s.h2);
      s.a = s.g.clone();
      activate(s.a);
      float* ap = s.a.data();
      const float* up = s.u.data();
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < s.a.numel(); ++i) ap[i] *= up[i];
    } else {
      s.u = linear(b.up, s.h2);
      s.a = s.u.clone();
      activate(s.a);
    }
    fq(layer, "ffn.act.out", s.a);
    Tensor f = linear(b.down, s.a);
    dropout(f, drop_.hidden, layer, kFfnOut);
    return f;
  }

  void ffn_backward(int layer, const Block& b, const BlockState& s, Tensor& dout, Tensor& dh) {
    dropout(dout, drop_.hidden, layer, kFfnOut);
    Tensor da;
    linear_back(b.down, s.a, dout, da, false);
    fq_back(layer, "ffn.act.out", da);
    if (c_.gated_ffn) {
      // a = act(g) ⊙ u
      Tensor act = s.g.clone();
      activate(act);
      Tensor du = Tensor::uninitialized(s.u.shape()), dact = Tensor::uninitialized(s.g.shape());
      const float* dap = da.data();
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < da.numel(); ++i) {
        du[i] = dap[i] * act[i];
        dact[i] = dap[i] * s.u[i];
      }
      Tensor dg = Tensor::uninitialized(s.g.shape());
      activation_backward(c_.activation, s.g.data(), dact.data(), dg.data(), dg.numel());
      linear_back(b.gate, s.h2, dg, dh, true);
      linear_back(b.up, s.h2, du, dh, true);
    } else {
      Tensor du = Tensor::uninitialized(s.u.shape());
      activation_backward(c_.activation, s.u.data(), da.data(), du.data(), du.numel());
      linear_back(b.up, s.h2, du, dh, true);
    }
  }

  Tensor block_forward(int i, const Tensor& x) {
    const Block& b = m_.blocks[i];
    BlockState& s = blocks_[i];
    s.x0 = x;
    if (c_.pre_norm) {
      s.h1 = norm(b.attn_norm, x, s.n1);
      fq(i, "attn.norm.out", s.h1);
      s.x1 = sum(x, attention_forward_(i, b, s));
      fq(i, "attn.residual_sum", s.x1);
      s.h2 = norm(b.ffn_norm, s.x1, s.n2);
      fq(i, "ffn.norm.out", s.h2);
      Tensor y = sum(s.x1, ffn_forward(i, b, s));
      fq(i, "ffn.residual_sum", y);
      return y;
    }
    s.h1 = x;
    const Norm& producer = i == 0 ? m_.embedding_norm : m_.blocks[i - 1].ffn_norm;
    Tensor shortcut = x;
    if (!producer.residual_scale.empty()) scale_channels(shortcut = x.clone(), producer.residual_scale);
    Tensor u = sum(shortcut, attention_forward_(i, b, s));
    fq(i, "attn.residual_sum", u);
    s.x1 = norm(b.attn_norm, u, s.n1);
    fq(i, "attn.norm.out", s.x1);
    s.h2 = s.x1;
    shortcut = s.x1;
    if (!b.attn_norm.residual_scale.empty()) scale_channels(shortcut = s.x1.clone(), b.attn_norm.residual_scale);
    Tensor y = sum(shortcut, ffn_forward(i, b, s));
    fq(i, "ffn.residual_sum", y);
    y = norm(b.ffn_norm, y, s.n2);
    fq(i, "ffn.norm.out", y);
    return y;
  }

  // The gradient of the block's output → that of its input.
  Tensor block_backward(int i, Tensor& dy) {
    const Block& b = m_.blocks[i];
    const BlockState& s = blocks_[i];
    if (c_.pre_norm) {
      // x2 = x1 + ffn(norm2(x1)); x1 = x0 + attn(norm1(x0))
      fq_back(i, "ffn.residual_sum", dy);
      Tensor dout = copy_of(dy), dh2;
      ffn_backward(i, b, s, dout, dh2);
      fq_back(i, "ffn.norm.out", dh2);
      Tensor dx1 = dy;  // owned by us: the residual path
      norm_back(b.ffn_norm, s.n2, dh2, dx1, true);
      fq_back(i, "attn.residual_sum", dx1);
      Tensor dattn = copy_of(dx1), dh1;
      attention_backward_(i, b, s, dattn, dh1);
      fq_back(i, "attn.norm.out", dh1);
      norm_back(b.attn_norm, s.n1, dh1, dx1, true);
      return dx1;
    }
    // x2 = LN2(x1 + ffn(x1)); x1 = LN1(x0 + attn(x0))
    fq_back(i, "ffn.norm.out", dy);
    Tensor ds2;
    norm_back(b.ffn_norm, s.n2, dy, ds2, false);
    fq_back(i, "ffn.residual_sum", ds2);
    Tensor dffn = copy_of(ds2);
    scale_channels(ds2, b.attn_norm.residual_scale);  // the shortcut's share
    ffn_backward(i, b, s, dffn, ds2);  // ds2 becomes d x1 (residual + FFN input)
    fq_back(i, "attn.norm.out", ds2);
    Tensor ds1;
    norm_back(b.attn_norm, s.n1, ds2, ds1, false);
    fq_back(i, "attn.residual_sum", ds1);
    Tensor dattn = copy_of(ds1);
    scale_channels(ds1, (i == 0 ? m_.embedding_norm : m_.blocks[i - 1].ffn_norm).residual_scale);
    attention_backward_(i, b, s, dattn, ds1);  // ds1 becomes d x0
    return ds1;
  }

  // ---- heads ------------------------------------------------------------------------------

  // The rows of x whose label is a target, gathered; `rows` receives their indices.
  Tensor gather_targets(const Tensor& x, const std::vector<int32_t>& labels, std::vector<int64_t>& rows,
                        std::vector<int32_t>& kept) {
    for (int64_t i = 0; i < N_; ++i)
      if (labels[i] != kIgnoreLabel) {
        if (labels[i] < 0 || labels[i] >= c_.vocab_size)
          fail("label {} at sequence {} position {} is outside the vocabulary (size {})", labels[i], i / batch_.seq,
               i % batch_.seq, c_.vocab_size);
        if (i % batch_.seq >= batch_.lengths[i / batch_.seq])
          fail("sequence {} has a label at padding position {}", i / batch_.seq, i % batch_.seq);
        rows.push_back(i);
        kept.push_back(labels[i]);
      }
    const int64_t D = x.cols();
    Tensor out = Tensor::uninitialized({static_cast<int64_t>(rows.size()), D});
    for (size_t r = 0; r < rows.size(); ++r) std::memcpy(out.data() + r * D, x.data() + rows[r] * D, sizeof(float) * D);
    return out;
  }
  Tensor scatter_rows(const Tensor& d, const std::vector<int64_t>& rows) {
    const int64_t D = d.cols();
    Tensor out({batch_.batch, batch_.seq, D});
    for (size_t r = 0; r < rows.size(); ++r) std::memcpy(out.data() + rows[r] * D, d.data() + r * D, sizeof(float) * D);
    return out;
  }

  LossSum head(Tensor& x, const Targets& t, float grad_scale, Tensor* dx) {
    switch (c_.head) {
      case Head::CausalLM:
      case Head::MaskedLM:
        if (!t.tokens) fail("{}: a language-model head needs per-token labels", c_.architecture);
        if (static_cast<int64_t>(t.tokens->size()) != N_)
          fail("{} labels for a batch of {} x {}", t.tokens->size(), batch_.batch, batch_.seq);
        return c_.head == Head::CausalLM ? causal_head(x, *t.tokens, t, grad_scale, dx)
                                         : masked_head(x, *t.tokens, t, grad_scale, dx);
      case Head::SequenceClassification:
        if (!t.teacher_logits && (!t.sequences || static_cast<int64_t>(t.sequences->size()) != batch_.batch))
          fail("{}: sequence classification needs one label per sequence", c_.architecture);
        return classifier_head(x, t, grad_scale, dx);
      case Head::None:
        break;
    }
    fail("{}: a bare encoder has no head to train", c_.architecture);
  }

  // The "logits" point, and a copy for logits() callers.
  void logits_point(Tensor& logits) {
    fq(-1, "logits", logits);
    if (logits_out_) *logits_out_ = logits.clone();
  }

  // Σ (logit − teacher)² when distilling (Targets::teacher_logits), else `task_loss`.
  template <class TaskLoss>
  LossSum loss_of(const Tensor& logits, const Targets& t, float grad_scale, Tensor& dlogits, TaskLoss task_loss) {
    dlogits = Tensor::uninitialized(logits.shape());
    float* d = backward_ ? dlogits.data() : nullptr;
    if (!t.teacher_logits) return task_loss(d);
    if (static_cast<int64_t>(t.teacher_logits->size()) != logits.numel())
      fail("{} teacher logits for {} logits ({})", t.teacher_logits->size(), logits.numel(), shape_str(logits.shape()));
    LossSum loss = squared_error(logits.data(), logits.numel(), t.teacher_logits->data(), grad_scale, d);
    loss.correct = 0;
    return loss;
  }

  // Logits only for the target rows (all of them for a causal LM, ~15% for masked LM).
  LossSum logits_loss(const Linear& out, const Tensor& h, const std::vector<int32_t>& labels, const Targets& t,
                      float grad_scale, Tensor* dh) {
    Tensor logits = linear(out, h);
    logits_point(logits);
    Tensor dlogits;
    const LossSum loss = loss_of(logits, t, grad_scale, dlogits, [&](float* d) {
      return cross_entropy(logits.data(), logits.rows(), logits.cols(), labels.data(), grad_scale, d);
    });
    if (backward_) {
      fq_back(-1, "logits", dlogits);
      linear_back(out, h, dlogits, *dh, false);
    }
    return loss;
  }

  LossSum causal_head(Tensor& x, const std::vector<int32_t>& labels, const Targets& t, float grad_scale, Tensor* dx) {
    NormState fn;
    const bool has_norm = c_.pre_norm && c_.final_norm;
    Tensor h = has_norm ? norm(m_.final_norm, x, fn) : x;
    if (has_norm) fq(-1, "final_norm.out", h);
    std::vector<int64_t> rows;
    std::vector<int32_t> kept;
    Tensor sel = gather_targets(h, labels, rows, kept);
    Tensor dsel;
    const LossSum loss = logits_loss(m_.lm_head, sel, kept, t, grad_scale, &dsel);
    if (!backward_) return loss;
    Tensor dh = scatter_rows(dsel, rows);
    if (has_norm) fq_back(-1, "final_norm.out", dh);
    if (has_norm) {
      *dx = Tensor();
      norm_back(m_.final_norm, fn, dh, *dx, false);
    } else {
      *dx = dh;
    }
    return loss;
  }

  LossSum masked_head(Tensor& x, const std::vector<int32_t>& labels, const Targets& targets, float grad_scale,
                      Tensor* dx) {
    std::vector<int64_t> rows;
    std::vector<int32_t> kept;
    Tensor sel = gather_targets(x, labels, rows, kept);
    Tensor t = linear(m_.mlm_transform, sel);
    Tensor a = t.clone();
    activate(a);
    fq(-1, "mlm.act.out", a);
    NormState ns;
    Tensor n = norm(m_.mlm_norm, a, ns);
    fq(-1, "mlm.norm.out", n);
    Tensor dn;
    const LossSum loss = logits_loss(m_.mlm_decoder, n, kept, targets, grad_scale, &dn);
    if (!backward_) return loss;
    fq_back(-1, "mlm.norm.out", dn);
    Tensor da;
    norm_back(m_.mlm_norm, ns, dn, da, false);
    fq_back(-1, "mlm.act.out", da);
    Tensor dt = Tensor::uninitialized(t.shape());
    activation_backward(c_.activation, t.data(), da.data(), dt.data(), dt.numel());
    Tensor dsel;
    linear_back(m_.mlm_transform, sel, dt, dsel, false);
    *dx = scatter_rows(dsel, rows);
    return loss;
  }

  LossSum classifier_head(Tensor& x, const Targets& t, float grad_scale, Tensor* dx) {
    const int64_t B = batch_.batch, T = batch_.seq, D = c_.hidden;
    std::vector<int64_t> rows(B);
    Tensor first = Tensor::uninitialized({B, D});
    for (int64_t b = 0; b < B; ++b) {
      rows[b] = b * T;
      std::memcpy(first.data() + b * D, x.data() + b * T * D, sizeof(float) * D);
    }
    Tensor pooled = linear(m_.pooler, first);
    tanh_inplace(pooled.data(), pooled.numel());
    Tensor dropped = pooled.clone();  // pooled stays the tanh output, for its backward
    fq(-1, "pooler.out", dropped);
    dropout(dropped, drop_.hidden, -1, kPooler);
    Tensor logits = linear(m_.classifier, dropped);
    logits_point(logits);
    Tensor dlogits;
    const LossSum loss = loss_of(logits, t, grad_scale, dlogits, [&](float* d) {
      const std::vector<float>& labels = *t.sequences;
      if (c_.regression) return squared_error(logits.data(), B, labels.data(), grad_scale, d);
      std::vector<int32_t> ids(B);
      for (int64_t b = 0; b < B; ++b) {
        ids[b] = static_cast<int32_t>(labels[b]);
        if (ids[b] != labels[b] || ids[b] < 0 || ids[b] >= c_.num_labels)
          fail("class label {} of sequence {} is not one of 0..{}", labels[b], b, c_.num_labels - 1);
      }
      return cross_entropy(logits.data(), B, c_.num_labels, ids.data(), grad_scale, d);
    });
    if (!backward_) return loss;
    fq_back(-1, "logits", dlogits);
    Tensor ddrop;
    linear_back(m_.classifier, dropped, dlogits, ddrop, false);
    dropout(ddrop, drop_.hidden, -1, kPooler);
    fq_back(-1, "pooler.out", ddrop);
    Tensor dpre = Tensor::uninitialized(pooled.shape());
    tanh_backward(pooled.data(), ddrop.data(), dpre.data(), dpre.numel());
    Tensor dfirst;
    linear_back(m_.pooler, first, dpre, dfirst, false);
    *dx = scatter_rows(dfirst, rows);
    return loss;
  }

  Model& m_;
  const ModelConfig& c_;
  const Batch& batch_;
  Dropout drop_;
  uint64_t key_;
  bool backward_;
  std::function<float*(const Tensor&)> grad_;
  QuantGraph* quant_;
  Tensor* logits_out_ = nullptr;
  int64_t N_ = 0;
  AttentionShape shape_;
  NormState embed_norm_;
  std::vector<BlockState> blocks_;
};

}  // namespace

TrainableModel::TrainableModel(Model& model) : model_(model) {
  const ModelConfig& c = model.config();
  if (c.arch == Arch::GPT2) fail("{}: training GPT-2 (fused c_attn) is not supported; use llama or bert", model.dir().string());
  auto add = [&](const std::string& name, const Tensor& value, bool decay) {
    if (value.empty()) return;
    if (by_storage_.count(value.data())) return;  // tied: one parameter, one gradient
    if (name.empty()) fail("{}: a parameter has no checkpoint name", model.dir().string());
    by_storage_[value.data()] = params_.size();
    params_.push_back({name, value, Tensor(value.shape()), decay});
  };
  add(model.token_embedding_source, model.token_embedding, true);
  add(model.position_embedding_source, model.position_embedding, true);
  add(model.type_embedding_source, model.type_embedding, true);
  std::vector<Norm*> norms = model.norms();
  std::vector<Linear*> linears = model.linears();
  for (Norm* n : norms) {
    add(n->source.weight, n->gamma, false);
    add(n->source.bias, n->beta, false);
  }
  for (Linear* l : linears) {
    if (l->source.fused_rows > 0 || l->source.transposed)
      fail("{}: layer {} is stored fused or transposed; training it is not supported", model.dir().string(), l->name);
    add(l->source.weight, l->weight, true);
    add(l->source.bias, l->bias, false);
  }
}

int64_t TrainableModel::parameter_count() const {
  int64_t n = 0;
  for (const Parameter& p : params_) n += p.value.numel();
  return n;
}

void TrainableModel::zero_grad() {
  for (Parameter& p : params_) std::memset(p.grad.data(), 0, sizeof(float) * p.grad.numel());
}

Tensor& TrainableModel::grad_of(const Tensor& value) {
  const auto it = by_storage_.find(value.data());
  if (it == by_storage_.end()) fail("internal: a tensor of shape {} is not a parameter", shape_str(value.shape()));
  return params_[it->second].grad;
}

float* TrainableModel::grad_ptr(const Tensor& value) { return value.empty() ? nullptr : grad_of(value).data(); }

LossSum TrainableModel::run(const Batch& batch_in, const Targets& targets, float grad_scale, const Dropout& dropout,
                            uint64_t dropout_key, bool backward, Tensor* logits) {
  Batch batch = batch_in;
  if (batch.lengths.empty()) batch.lengths.assign(batch.batch, batch.seq);
  Pass pass(*this, batch, dropout, dropout_key, backward, [this](const Tensor& t) { return grad_ptr(t); }, quant_);
  return pass.run(targets, grad_scale, logits);
}

Tensor TrainableModel::logits(const Batch& batch, const Targets& targets) {
  Tensor out;
  run(batch, targets, 0.f, Dropout{}, 0, false, &out);
  return out;
}

LossSum TrainableModel::accumulate(const Batch& batch, const Targets& targets, float grad_scale,
                                   const Dropout& dropout, uint64_t dropout_key) {
  return run(batch, targets, grad_scale, dropout, dropout_key, true);
}

LossSum TrainableModel::evaluate(const Batch& batch, const Targets& targets) {
  return run(batch, targets, 0.f, Dropout{}, 0, false);
}

}  // namespace tquant::train
