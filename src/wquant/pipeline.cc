#include "wquant/pipeline.h"

#include <fmt/format.h>

#include <chrono>
#include <memory>

#include "core/error.h"
#include "wquant/block_stats.h"
#include "wquant/gptq.h"
#include "wquant/grid_search.h"
#include "wquant/hessian.h"
#include "wquant/zfold.h"

namespace tquant::wq {

Method parse_method(std::string_view name) {
  if (name == "rtn") return Method::RTN;
  if (name == "gptq" || name == "optq") return Method::GPTQ;
  if (name == "adaround") return Method::AdaRound;
  if (name == "zfold") return Method::ZFold;
  if (name == "aespa") return Method::Aespa;
  fail("unknown weight-quantization method \"{}\" (expected rtn, gptq, adaround, zfold or aespa)", name);
}

const char* method_name(Method m) {
  switch (m) {
    case Method::RTN: return "rtn";
    case Method::GPTQ: return "gptq";
    case Method::AdaRound: return "adaround";
    case Method::ZFold: return "zfold";
    case Method::Aespa: return "aespa";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

enum class Role { Query, Key, Value, Other };

Tensor row_block(const Tensor& W, int64_t r0, int64_t r1) {
  Tensor out({r1 - r0, W.dim(1)});
  std::copy(W.data() + r0 * W.dim(1), W.data() + r1 * W.dim(1), out.data());
  return out;
}

WeightGrid grid_rows(const WeightGrid& g, int64_t r0, int64_t r1) {
  WeightGrid out = g;
  const int64_t per = g.format.groups_per_row(g.cols);
  out.rows = r1 - r0;
  out.scale.assign(g.scale.begin() + r0 * per, g.scale.begin() + r1 * per);
  out.zero.assign(g.zero.begin() + r0 * per, g.zero.begin() + r1 * per);
  return out;
}

// GPTQ with one Hessian for all rows, or one per equal block of rows (aespa's V: one per KV head).
QuantizedWeight gptq_rows(const Tensor& W, const std::vector<Tensor>& H, const WeightGrid& grid, bool act_order) {
  GptqOptions go;
  go.act_order = act_order;
  if (H.size() == 1) return gptq(W, H[0], grid, go);
  QuantizedWeight out;
  out.grid = grid;
  const int64_t rh = W.dim(0) / static_cast<int64_t>(H.size());
  for (size_t h = 0; h < H.size(); ++h) {
    const int64_t r0 = static_cast<int64_t>(h) * rh;
    const QuantizedWeight part = gptq(row_block(W, r0, r0 + rh), H[h], grid_rows(grid, r0, r0 + rh), go);
    out.codes.insert(out.codes.end(), part.codes.begin(), part.codes.end());
  }
  return out;
}

class BlockQuantizer {
 public:
  using LayerFn = std::function<void(const std::string& layer, int iter, int iters)>;
  BlockQuantizer(Model& model, int layer, BlockStatistics stats, const PipelineOptions& o, QuantizeReport& report,
                 const LayerFn& on_layer)
      : m_(model), layer_(layer), stats_(std::move(stats)), o_(o), report_(report), on_layer_(on_layer) {}

  void run() {
    Block& b = m_.blocks[layer_];
    const bool pre = m_.config().pre_norm;
    const bool fold_qkv = o_.method == Method::ZFold || (o_.method == Method::Aespa && o_.zfold);
    quantize_group({{&b.q, Role::Query}, {&b.k, Role::Key}, {&b.v, Role::Value}}, fold_qkv,
                   pre ? &b.attn_norm : nullptr);
    quantize_group({{&b.o, Role::Other}}, false, nullptr);
    if (m_.config().gated_ffn)
      quantize_group({{&b.gate, Role::Other}, {&b.up, Role::Other}}, fold_qkv, pre ? &b.ffn_norm : nullptr);
    else
      quantize_group({{&b.up, Role::Other}}, fold_qkv, pre ? &b.ffn_norm : nullptr);
    quantize_group({{&b.down, Role::Other}}, false, nullptr);
  }

 private:
  struct Member {
    Linear* linear;
    Role role;
  };

  // The layer's objective in the unfolded coordinates; Hs are prepared (damped) Hessians.
  Objective objective(Role role, const Tensor& H) const {
    Objective obj;
    const bool aespa = o_.method == Method::Aespa;
    if (!aespa || role == Role::Other) {
      obj.H = {H};
      return obj;
    }
    const int64_t per_group = m_.config().heads / m_.config().kv_heads;
    if (role == Role::Value) {
      for (const Tensor& hv : stats_.H_V) obj.H.push_back(damped(hv));
    } else if (role == Role::Query) {
      obj.H = {H};
      for (int h = 0; h < m_.config().heads; ++h) obj.G.push_back(stats_.G_Q[h / per_group]);
    } else {
      obj.H = {H};
      obj.G = stats_.G_K;
    }
    return obj;
  }

  Tensor damped(const Tensor& H) const {
    Tensor h = H.clone();
    Tensor scratch({1, H.dim(0)});
    prepare_hessian(h, scratch, o_.percdamp);
    return h;
  }

  const char* kind(Role role) const {
    if (o_.method != Method::Aespa || role == Role::Other) return "H";
    return role == Role::Query ? "attention-Q" : role == Role::Key ? "attention-K" : "attention-V";
  }

  static Objective folded(const Objective& obj, const std::vector<float>& zeta) {
    if (zeta.empty()) return obj;
    Objective f = obj;
    for (Tensor& h : f.H) h = fold_hessian(h, zeta);
    return f;
  }

  WeightGrid initial_grid(const Tensor& W, const Tensor& H) const {
    switch (o_.method) {
      case Method::RTN: return o_.rtn_mse ? mse_grid(W, o_.format) : minmax_grid(W, o_.format);
      case Method::GPTQ: return minmax_grid(W, o_.format);
      case Method::AdaRound:  // the H-weighted clip search: AdaRound's loss is the same quadratic
      case Method::ZFold:
      case Method::Aespa: return search_grid(W, H, o_.format);
    }
    return minmax_grid(W, o_.format);
  }

  void quantize_group(const std::vector<Member>& members, bool use_zfold, Norm* fold_into) {
    const auto t0 = Clock::now();
    const Tensor& Hraw = stats_.H.at(members[0].linear->name);
    std::vector<Tensor> W;
    Tensor H;
    int64_t dead = 0;
    for (const Member& mb : members) {
      W.push_back(mb.linear->weight.clone());
      Tensor h = Hraw.clone();
      dead = prepare_hessian(h, W.back(), o_.percdamp).dead_inputs;
      H = std::move(h);  // identical for every member: same input, same damping
    }
    std::vector<float> zeta;
    std::vector<WeightGrid> grids;
    int rounds = -1;
    if (use_zfold) {
      std::vector<const Tensor*> ws;
      for (const Tensor& w : W) ws.push_back(&w);
      if (on_layer_) on_layer_(members[0].linear->name + " (Z-Fold)", 0, 0);
      ZFoldResult z = zfold(ws, H, o_.format, o_.zfold_rounds);
      zeta = std::move(z.zeta);
      grids = std::move(z.grids);
      rounds = z.rounds;
    }
    const double shared_seconds = seconds_since(t0);
    for (size_t k = 0; k < members.size(); ++k) {
      const auto t1 = Clock::now();
      Linear& l = *members[k].linear;
      current_ = l.name;
      if (on_layer_) on_layer_(l.name, 0, 0);
      const Objective obj = objective(members[k].role, H);
      const Tensor Wf = zeta.empty() ? W[k] : fold_weight(W[k], zeta);
      const Objective objf = folded(obj, zeta);
      const WeightGrid grid = zeta.empty() ? initial_grid(W[k], H) : grids[k];
      QuantizedWeight q = solve(Wf, objf, grid, members[k].role);
      LayerReport r;
      r.name = l.name;
      r.objective_kind = kind(members[k].role);
      r.objective_rtn = obj.evaluate(W[k], round_to_grid(W[k], minmax_grid(W[k], o_.format)).dequantize());
      r.dead_inputs = dead;
      r.zfold_rounds = rounds;
      r.unrepresentable = unrepresentable_;
      if (!zeta.empty() && !fold_into) q.zeta = zeta;  // nowhere to fold: the format keeps ζ
      Tensor w_hat = q.dequantize();
      // In the unfolded coordinates the folded weight is w_hat·diag(ζ): same objective value.
      r.objective = zeta.empty() || !fold_into ? obj.evaluate(W[k], w_hat) : objf.evaluate(Wf, w_hat);
      l.weight = std::move(w_hat);
      report_.weights[l.name] = std::move(q);
      r.seconds = seconds_since(t1) + shared_seconds / static_cast<double>(members.size());
      report_.layers.push_back(std::move(r));
    }
    if (!zeta.empty() && fold_into) {
      // The norm now outputs ζ ⊙ x, which the folded weights W·diag(1/ζ) read back exactly.
      Tensor gamma = fold_into->gamma.clone();
      for (int64_t j = 0; j < gamma.numel(); ++j) gamma[j] *= zeta[j];
      fold_into->gamma = std::move(gamma);
      if (!fold_into->beta.empty()) {
        Tensor beta = fold_into->beta.clone();
        for (int64_t j = 0; j < beta.numel(); ++j) beta[j] *= zeta[j];
        fold_into->beta = std::move(beta);
      }
      report_.folded_norms.push_back(fold_into->name);
    }
  }

  RoundingOptions rounding_options(RoundingOptions ro) const {
    if (o_.iters > 0) ro.iters = o_.iters;
    if (o_.lr > 0) ro.lr = o_.lr;
    if (on_layer_) ro.progress = [this](int iter, int iters) { on_layer_(current_, iter, iters); };
    return ro;
  }

  QuantizedWeight solve(const Tensor& W, const Objective& obj, const WeightGrid& grid, Role role) {
    unrepresentable_ = 0;
    switch (o_.method) {
      case Method::RTN: return round_to_grid(W, grid);
      case Method::GPTQ: return gptq_rows(W, obj.H, grid, o_.act_order);
      case Method::ZFold: return gptq_rows(W, obj.H, grid, true);
      case Method::AdaRound: {
        RoundingOptions ro = rounding_options(adaround_defaults());
        return learn_rounding(W, obj, round_to_grid(W, grid), ro).weight;
      }
      case Method::Aespa: {
        QuantizedWeight init = o_.optq_init ? gptq_rows(W, obj.H, grid, true) : round_to_grid(W, grid);
        if (!o_.learn_rounding) return init;
        RoundingOptions ro = rounding_options(aespa_defaults(role != Role::Other));
        if (!o_.optq_init) ro.init = RoundingInit::kFractional;
        RoundingResult rr = learn_rounding(W, obj, init, ro);
        unrepresentable_ = rr.unrepresentable;
        return std::move(rr.weight);
      }
    }
    fail("unreachable");
  }

  Model& m_;
  int layer_;
  BlockStatistics stats_;
  const PipelineOptions& o_;
  QuantizeReport& report_;
  const LayerFn& on_layer_;
  std::string current_;
  int unrepresentable_ = 0;
};

}  // namespace

QuantizeReport quantize_model(Model& model, const std::vector<Batch>& calibration, const PipelineOptions& o,
                              const ProgressFn& progress) {
  if (calibration.empty()) fail("weight quantization needs calibration data");
  model.require_fp_weights("weight quantization");
  const ModelConfig& c = model.config();
  for (const Block& b : model.blocks)
    for (const Linear* l : {&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down})
      if (!l->weight.empty()) check_format(o.format, l->in(), l->name.c_str());
  const auto t0 = Clock::now();
  QuantizeReport report;
  Progress p;
  p.blocks = c.layers;
  const BlockQuantizer::LayerFn notify = [&](const std::string& layer, int iter, int iters) {
    if (!progress) return;
    p.layer = layer;
    p.iter = iter;
    p.iters = iters;
    p.elapsed = seconds_since(t0);
    progress(p);
  };

  // Block 0's inputs: the embeddings of every calibration batch. Only the current block's
  // inputs are ever held.
  std::vector<Tensor> x;
  for (const Batch& b : calibration) x.push_back(model.embed(b));
  for (const Batch& b : calibration)
    for (int i = 0; i < b.batch; ++i) report.calibration_tokens += b.lengths.empty() ? b.seq : b.lengths[i];

  for (int layer = 0; layer < c.layers; ++layer) {
    p.block = layer;
    notify(fmt::format("layers.{} statistics", layer), 0, 0);
    auto ts = Clock::now();
    auto hook = std::make_shared<BlockStatsHook>(model, layer, o.method == Method::Aespa);
    Hooks hooks;
    hooks.add(hook);
    for (size_t i = 0; i < calibration.size(); ++i) {
      Tensor scratch = x[i].clone();  // the statistics pass must not advance the inputs
      model.run_block(layer, scratch, calibration[i], &hooks);
    }
    report.statistics_seconds += seconds_since(ts);
    BlockQuantizer(model, layer, hook->finish(), o, report, notify).run();
    ts = Clock::now();
    for (size_t i = 0; i < calibration.size(); ++i) model.run_block(layer, x[i], calibration[i]);
    report.statistics_seconds += seconds_since(ts);
    const double elapsed = seconds_since(t0);
    p.remaining = elapsed / (layer + 1) * (c.layers - layer - 1);
  }
  report.seconds = seconds_since(t0);
  return report;
}

}  // namespace tquant::wq
