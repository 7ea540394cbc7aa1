#pragma once
// Gamma Migration (Wei et al. 2022, METHODS.md §3). LN(x) = γ ⊙ x̂ + β = γ ⊙ (x̂ + β/γ): the norm
// becomes non-scaling, its output X' = x̂ + β/γ is the tensor that gets quantized (the same
// "<norm>.out" hook point), and γ moves into every consumer: the input columns of the linears
// that read the norm, and, on post-norm models, the residual shortcut (X' ⊙ γ + branch).
// Exact in real arithmetic: FP outputs change only by rounding.
//
// Channels with |γ| < relative_floor · max|γ| keep their γ in the norm (dividing β by a
// near-zero γ would create huge values); the rest migrate. The last norm before the head
// (final_norm, or BERT's last LayerNorm before the pooler) is not migrated, as in the paper.
#include <string>
#include <vector>

#include "model/model.h"

namespace tquant {

struct GammaMigrationReport {
  std::vector<std::string> norms;  // the norms migrated
  int64_t channels_kept = 0;       // channels whose γ stayed in the norm (|γ| too small)
};

GammaMigrationReport migrate_gamma(Model& model, float relative_floor = 1e-3f);

}  // namespace tquant
