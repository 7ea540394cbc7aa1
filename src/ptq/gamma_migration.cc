#include "ptq/gamma_migration.h"

#include <cmath>

#include "core/error.h"

namespace tquant {
namespace {

// Moves γ's migratable part out of `norm` into the columns of `consumers`; returns the factor
// moved per channel (1 where γ stays).
Tensor migrate(Norm& norm, const std::vector<Linear*>& consumers, float relative_floor, int64_t& kept) {
  const int64_t d = norm.gamma.numel();
  float max_abs = 0;
  for (int64_t j = 0; j < d; ++j) max_abs = std::max(max_abs, std::fabs(norm.gamma[j]));
  Tensor fold({d});
  Tensor gamma = norm.gamma.clone();  // never write through to a shared or mapped buffer
  Tensor beta = norm.beta.empty() ? Tensor() : norm.beta.clone();
  for (int64_t j = 0; j < d; ++j) {
    const float g = gamma[j];
    if (std::fabs(g) < relative_floor * max_abs || g == 0.f) {
      fold[j] = 1.f;
      ++kept;
      continue;
    }
    fold[j] = g;
    gamma[j] = 1.f;
    if (!beta.empty()) beta[j] /= g;
  }
  for (Linear* l : consumers) {
    if (l->in() != d) fail("gamma migration: {} has {} inputs but {} has {} channels", l->name, l->in(), norm.name, d);
    Tensor w = l->weight.clone();
    for (int64_t r = 0; r < l->out(); ++r)
      for (int64_t j = 0; j < d; ++j) w[r * d + j] *= fold[j];
    l->weight = std::move(w);
  }
  norm.gamma = std::move(gamma);
  norm.beta = std::move(beta);
  return fold;
}

}  // namespace

GammaMigrationReport migrate_gamma(Model& m, float relative_floor) {
  m.require_fp_weights("Gamma Migration");
  GammaMigrationReport report;
  const ModelConfig& c = m.config();
  auto consumers_of_attention = [](Block& b) { return std::vector<Linear*>{&b.q, &b.k, &b.v}; };
  auto consumers_of_ffn = [](Block& b) {
    std::vector<Linear*> out{&b.up};
    if (!b.gate.weight.empty()) out.push_back(&b.gate);
    return out;
  };
  if (c.pre_norm) {
    // Pre-norm: each norm feeds only its branch's input projections; the residual stream
    // never sees the norm output.
    for (Block& b : m.blocks) {
      migrate(b.attn_norm, consumers_of_attention(b), relative_floor, report.channels_kept);
      migrate(b.ffn_norm, consumers_of_ffn(b), relative_floor, report.channels_kept);
      report.norms.push_back(b.attn_norm.name);
      report.norms.push_back(b.ffn_norm.name);
    }
    return report;
  }
  // Post-norm (BERT): a norm's output feeds the next branch and the residual shortcut.
  const size_t L = m.blocks.size();
  m.embedding_norm.residual_scale =
      migrate(m.embedding_norm, consumers_of_attention(m.blocks[0]), relative_floor, report.channels_kept);
  report.norms.push_back(m.embedding_norm.name);
  for (size_t i = 0; i < L; ++i) {
    Block& b = m.blocks[i];
    b.attn_norm.residual_scale = migrate(b.attn_norm, consumers_of_ffn(b), relative_floor, report.channels_kept);
    report.norms.push_back(b.attn_norm.name);
    if (i + 1 < L) {
      b.ffn_norm.residual_scale =
          migrate(b.ffn_norm, consumers_of_attention(m.blocks[i + 1]), relative_floor, report.channels_kept);
      report.norms.push_back(b.ffn_norm.name);
    }
  }
  return report;
}

}  // namespace tquant
