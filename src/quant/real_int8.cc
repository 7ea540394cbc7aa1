#include "quant/real_int8.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/int8_linear.h"
#include "quant/fake_quant.h"

namespace tquant {
namespace {

class RealInt8Hook : public Hook {
 public:
  RealInt8Hook(std::map<std::string, QuantParams> params, std::map<std::string, std::shared_ptr<PerTokenRecord>> records)
      : params_(std::move(params)), records_(std::move(records)) {}

  void on_activation(const std::string& point, Tensor& x, const BatchInfo&) override {
    const auto it = params_.find(point);
    if (it == params_.end()) return;
    const auto rec = records_.find(point);
    if (rec == records_.end()) {
      fake_quantize(x, it->second, point);
      return;
    }
    // What fake_quantize does for a per-token point, with the row parameters kept.
    const QuantParams dyn = per_token_params(x.data(), x.rows(), x.cols(), it->second.bits, it->second.symmetric, point);
    fake_quantize(x, dyn, point);
    PerTokenRecord& r = *rec->second;
    r.data = x.data();
    r.rows = x.rows();
    r.cols = x.cols();
    r.scale = dyn.scale;
    r.zero = dyn.zero_point;
  }

 private:
  std::map<std::string, QuantParams> params_;
  std::map<std::string, std::shared_ptr<PerTokenRecord>> records_;
};

bool integral(const std::vector<float>& v) {
  for (float z : v)
    if (z != std::nearbyint(z)) return false;
  return true;
}

// The weight's int8 codes and per-row scales, recovered from its fake-quantized values.
Int8Weight int8_weight(const Linear& l, const QuantParams& wp, const std::vector<int32_t>& channel_group) {
  const Granularity g = wp.grouping.granularity;
  if (!wp.symmetric)
    fail("{}: --real-int8 needs symmetric weights, but the recipe quantizes them asymmetric (the int8 GEMM "
         "compensates activation zero points only)", l.name);
  if (!(g == Granularity::PerTensor || (g == Granularity::PerChannel && wp.grouping.channel_axis == 0)))
    fail("{}: --real-int8 needs per-tensor or per-output-channel weight scales, not {}", l.name,
         granularity_name(g));
  const int64_t n = l.out(), k = l.in();
  std::vector<int8_t> codes(static_cast<size_t>(n * k));
  quantize(l.weight.data(), n, k, wp, codes.data(), l.name + ".weight");
  std::vector<float> back(static_cast<size_t>(n * k));
  dequantize(codes.data(), n, k, wp, back.data(), l.name + ".weight");
  if (std::memcmp(back.data(), l.weight.data(), back.size() * sizeof(float)) != 0)
    fail("{}: the weights are not on the grid of their quantizer (were they changed after quantize_weights?)", l.name);
  std::vector<float> row_scale(n);
  for (int64_t r = 0; r < n; ++r) row_scale[r] = g == Granularity::PerTensor ? wp.scale[0] : wp.scale[r];
  return make_int8_weight(codes, n, k, row_scale, channel_group, l.name);
}

}  // namespace

std::string linear_input_point(const ModelConfig& c, const std::string& linear) {
  const int L = c.layers;
  const std::string last_hidden = c.pre_norm ? (c.final_norm ? std::string("final_norm.out")
                                                             : fmt::format("layers.{}.ffn.residual_sum", L - 1))
                                             : fmt::format("layers.{}.ffn.norm.out", L - 1);
  if (linear == "lm_head" || linear == "mlm.transform" || linear == "pooler.dense") return last_hidden;
  if (linear == "mlm.decoder") return "mlm.norm.out";
  if (linear == "classifier") return "pooler.out";
  int layer = -1;
  char rest[64] = {};
  if (std::sscanf(linear.c_str(), "layers.%d.%63s", &layer, rest) != 2 || layer < 0 || layer >= L)
    fail("{}: not a linear layer tquant knows the input of", linear);
  const std::string r = rest;
  if (r == "attn.q_proj" || r == "attn.k_proj" || r == "attn.v_proj") {
    if (c.pre_norm) return fmt::format("layers.{}.attn.norm.out", layer);
    if (layer > 0) return fmt::format("layers.{}.ffn.norm.out", layer - 1);
    return c.embedding_norm ? "embed.norm.out" : "embed.out";
  }
  if (r == "attn.o_proj") return fmt::format("layers.{}.attn.context", layer);
  if (r == "ffn.gate_proj" || r == "ffn.up_proj")
    return fmt::format("layers.{}.{}.norm.out", layer, c.pre_norm ? "ffn" : "attn");
  if (r == "ffn.down_proj") return fmt::format("layers.{}.ffn.act.out", layer);
  fail("{}: not a linear layer tquant knows the input of", linear);
}

RealInt8Setup enable_real_int8(Model& model, const Calibration& cal,
                               const std::map<std::string, QuantParams>& weight_params) {
  RealInt8Setup out;
  std::map<std::string, std::shared_ptr<PerTokenRecord>> records;
  for (Linear* l : model.linears()) {
    const std::string in_point = cal.points.count(l->name + ".in") ? l->name + ".in"
                                                                   : linear_input_point(model.config(), l->name);
    const auto wp = weight_params.find(l->name);
    const auto ip = cal.points.find(in_point);
    if (wp == weight_params.end()) {
      out.fp_layers.push_back({l->name, "weights not quantized"});
      continue;
    }
    if (ip == cal.points.end()) {
      out.fp_layers.push_back({l->name, fmt::format("input point {} not quantized", in_point)});
      continue;
    }
    if (wp->second.bits > 8 || ip->second.bits > 8) {
      out.fp_layers.push_back({l->name, wp->second.bits > 8 ? fmt::format("weights at {} bits", wp->second.bits)
                                                          : fmt::format("input {} at {} bits", in_point, ip->second.bits)});
      continue;
    }
    const QuantParams& p = ip->second;
    const Granularity g = p.grouping.granularity;
    if (g != Granularity::PerTensor && g != Granularity::PerToken && g != Granularity::PerEmbeddingGroup)
      fail("{}: --real-int8 supports per-tensor, per-token and per-embedding-group activation scales, but its input "
           "{} is quantized {}", l->name, in_point, granularity_name(g));
    if (!integral(p.zero_point))
      fail("{}: its input {} has a fractional zero point (learnt, e.g. by token-wise clipping's fine stage); the "
           "integer GEMM needs integral ones", l->name, in_point);
    if (g == Granularity::PerToken && l->name == "pooler.dense")
      fail("{}: --real-int8 cannot run the pooler on a per-token input ({}): it sees a copy of the first tokens, "
           "not the tensor whose scales were recorded", l->name, in_point);
    if (g == Granularity::PerEmbeddingGroup && static_cast<int64_t>(p.grouping.channel_group.size()) != l->in())
      fail("{}: its input {} has {} PEG channels, the layer {} inputs", l->name, in_point,
           p.grouping.channel_group.size(), l->in());

    auto lin = std::make_shared<Int8Linear>();
    lin->weight = int8_weight(*l, wp->second,
                              g == Granularity::PerEmbeddingGroup ? p.grouping.channel_group : std::vector<int32_t>{});
    lin->input_point = in_point;
    lin->input_bits = p.bits;
    lin->input_symmetric = p.symmetric;
    if (g == Granularity::PerToken) {
      auto& rec = records[in_point];
      if (!rec) rec = std::make_shared<PerTokenRecord>();
      lin->per_token = rec;
    } else {
      lin->group_scale = p.scale;
      lin->group_zero = p.zero_point;
    }
    l->int8 = lin;
    out.int8_layers.push_back(l->name);
  }
  out.hook = std::make_shared<RealInt8Hook>(cal.points, std::move(records));
  return out;
}

}  // namespace tquant
