#pragma once
// tquant eval --real-int8: linears whose weights and inputs a recipe quantizes to at most 8 bits
// run the integer GEMM (kernels/int8_gemm.h) instead of a float GEMM on fake-quantized values.
//
// Activations are quantized where they are produced (the hook at `<linear>.out`, a norm's
// `.out`, `ffn.act.out`, `attn.context`, ...), so a linear's input already lies on the grid of
// the point that produced it (or of its own `.in` point, when the recipe quantizes that): its
// integer codes are recovered exactly from that point's parameters, multiplied in int32 with
// the weight's codes and rescaled by s_x · s_w. The result equals fake quantization up to float
// rounding. Per-token points have no stored parameters: the hook that quantizes them records
// each token's scale for the consuming linears. PEG points fold their channel permutation into
// the weight's columns, so each group is a contiguous run with its own int32 sum.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/hooks.h"
#include "model/model.h"
#include "quant/calibration.h"
#include "quant/quant_params.h"

namespace tquant {

struct RealInt8Setup {
  std::vector<std::string> int8_layers;                       // run as W8A8
  std::vector<std::pair<std::string, std::string>> fp_layers;  // layer, why it stays float
  // Replaces FakeQuantHook: fake-quantizes every calibrated point exactly as it does, and
  // records the per-token scales the int8 layers need.
  std::shared_ptr<Hook> hook;
};

// The model's weights must already be fake-quantized by quantize_weights, with `weight_params`
// the parameters it applied. Attaches Linear::int8 to every linear whose weight and input are
// quantized at <= 8 bits; one that cannot run in int8 (asymmetric or per-group weights, per-channel
// activations, fractional zero points, per-token input to the pooler) is an error naming the
// layer and the reason.
RealInt8Setup enable_real_int8(Model& model, const Calibration& calibration,
                               const std::map<std::string, QuantParams>& weight_params);

// The hook point whose output the forward pass feeds to `linear` (e.g. layers.0.attn.q_proj ->
// layers.0.attn.norm.out for pre-norm models), before the linear's own `.in` point.
std::string linear_input_point(const ModelConfig& config, const std::string& linear);

}  // namespace tquant
