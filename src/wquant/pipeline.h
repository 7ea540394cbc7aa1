#pragma once
// The block-wise weight-quantization pipeline shared by every method (METHODS.md §4, §5):
//   for block i = 0 .. L-1:
//     1. run the calibration inputs of block i through it with BlockStatsHook (H per linear
//        input; for aespa also E[KᵀK], E[QᵀQ] and E[(AX)(AX)ᵀ] per head);
//     2. quantize every linear of the block from those statistics with the chosen method;
//     3. write the dequantized weights into the model and push the inputs through the now
//        quantized block: they are block i+1's calibration inputs.
// Only block i's inputs and statistics are alive at any time. Embeddings, norms and the head
// stay FP (only the linears inside blocks are quantized, as in aespa and GPTQ).
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "wquant/learned_rounding.h"
#include "wquant/weight_quant.h"

namespace tquant::wq {

enum class Method { RTN, GPTQ, AdaRound, ZFold, Aespa };
Method parse_method(std::string_view name);  // rtn|gptq|adaround|zfold|aespa
const char* method_name(Method m);

struct PipelineOptions {
  Method method = Method::GPTQ;
  WeightFormat format;
  bool rtn_mse = false;       // RTN: MSE ranges instead of min-max
  bool act_order = false;     // GPTQ/OPTQ column order by diag H (always on for Z-Fold and aespa's OPTQ)
  bool optq_init = true;      // aespa: start learned rounding from OPTQ (else from RTN)
  bool learn_rounding = true; // aespa: learned rounding after the init
  bool zfold = true;          // aespa: Z-Fold scales (off: the per-row clip-ratio grid)
  int iters = 0;              // learned rounding iterations (0: the method's default)
  float lr = 0;               // learned rounding Adam lr (0: the method's default)
  double percdamp = 0.01;
  int zfold_rounds = 30;
};

struct LayerReport {
  std::string name;
  double objective_rtn = 0;  // the layer's objective at min-max round-to-nearest
  double objective = 0;      // ... at the method's result
  std::string objective_kind;  // "H" (tr ΔW H ΔWᵀ), "attention-Q"/"attention-K" (with E[KᵀK]/E[QᵀQ]),
                               // "attention-V" (with E[(AX)(AX)ᵀ])
  double seconds = 0;
  int64_t dead_inputs = 0;
  int zfold_rounds = -1;      // -1: no Z-Fold
  int unrepresentable = 0;    // aespa: OPTQ codes that learned rounding could not start from
};

struct QuantizeReport {
  std::vector<LayerReport> layers;
  std::map<std::string, QuantizedWeight> weights;  // by Linear::name
  std::vector<std::string> folded_norms;            // norms whose γ (and β) absorbed a Z-Fold ζ
  int64_t calibration_tokens = 0;
  double seconds = 0;
  double statistics_seconds = 0;  // forward passes with the statistics hooks and block updates
};

struct Progress {
  int block = 0, blocks = 0;
  std::string layer;      // current linear
  int iter = 0, iters = 0;  // learned rounding, when running
  double elapsed = 0;     // seconds since the start
  double remaining = -1;  // estimate; -1 before the first block finishes
};
using ProgressFn = std::function<void(const Progress&)>;

// Quantizes every linear inside the blocks of `model` in place (weights replaced by their
// dequantized values, Z-Fold ζ folded into the preceding norm where that norm feeds only the
// quantized linears, else kept in the QuantizedWeight) and returns the codes and the report.
QuantizeReport quantize_model(Model& model, const std::vector<Batch>& calibration, const PipelineOptions& o,
                              const ProgressFn& progress = {});

}  // namespace tquant::wq
