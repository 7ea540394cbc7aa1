#include "quant/model_size.h"

#include <set>

#include "quant/calibration.h"
#include "quant/grouping.h"

namespace tquant {

ModelSize model_size(Model& model, const Recipe* recipe) {
  ModelSize s;
  std::set<const float*> seen;
  auto fp32 = [&](const Tensor& t) {
    if (t.empty() || !seen.insert(t.data()).second) return;
    s.fp32_bytes += 4 * t.numel();
    s.quantized_bytes += 4 * t.numel();
  };
  for (const Tensor* t : {&model.token_embedding, &model.position_embedding, &model.type_embedding}) fp32(*t);
  for (Norm* n : model.norms()) {
    fp32(n->gamma);
    fp32(n->beta);
  }
  for (Linear* l : model.linears()) {
    fp32(l->bias);
    const auto spec = recipe ? recipe->weight_spec(l->name) : std::nullopt;
    if (!spec) {
      fp32(l->weight);
      continue;
    }
    // A quantized tied head is stored as its own packed tensor (the checkpoint unties it).
    const int64_t groups = group_count(weight_grouping(*spec), l->out(), l->in(), l->name);
    s.fp32_bytes += seen.insert(l->weight.data()).second ? 4 * l->weight.numel() : 0;
    s.quantized_bytes += (l->weight.numel() * spec->bits + 7) / 8 + 4 * groups + (spec->symmetric ? 0 : groups);
  }
  return s;
}

}  // namespace tquant
