#include "quant/model_size.h"

#include <fmt/format.h>

#include <map>
#include <set>
#include <vector>

#include "quant/calibration.h"
#include "quant/grouping.h"

namespace tquant {

ModelSize model_size(Model& model, const Recipe* recipe) {
  ModelSize s;
  std::map<const Tensor*, const QuantizedTensor*> quantized;
  const std::vector<QuantizedTensor> tensors = recipe ? quantized_tensors(model, *recipe) : std::vector<QuantizedTensor>{};
  for (const QuantizedTensor& t : tensors) quantized[t.tensor] = &t;
  std::set<const float*> in_fp32_total, stored_fp32;
  auto count = [&](const Tensor& t) {
    if (t.empty()) return;
    if (in_fp32_total.insert(t.data()).second) s.fp32_bytes += 4 * t.numel();
    const auto q = quantized.find(&t);
    if (q == quantized.end()) {
      if (stored_fp32.insert(t.data()).second) s.quantized_bytes += 4 * t.numel();
      return;
    }
    const TensorQuantSpec& spec = q->second->spec;
    const int64_t groups = group_count(weight_grouping(spec), t.dim(0), t.dim(1), q->second->name);
    s.quantized_bytes += (t.numel() * spec.bits + 7) / 8 + 4 * groups + (spec.symmetric ? 0 : groups);
  };
  for (const auto& [name, table] : model.embedding_tables()) count(*table);
  for (Norm* n : model.norms()) {
    count(n->gamma);
    count(n->beta);
  }
  for (Linear* l : model.linears()) {
    count(l->bias);
    count(l->weight);
  }
  return s;
}

std::string describe(const ModelSize& s) {
  return fmt::format("{} bytes as stored quantized, {} in FP32 ({:.2f}x smaller)", s.quantized_bytes, s.fp32_bytes,
                     static_cast<double>(s.fp32_bytes) / static_cast<double>(s.quantized_bytes));
}

}  // namespace tquant
