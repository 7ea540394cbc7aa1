#include "train/attention_grads.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/counter_rng.h"
#include "kernels/ops.h"

namespace tquant::train {
namespace {

// The dropped-out probabilities of one (batch, head) block, with the mask drawn at the block's
// global offset so that forward and backward agree.
void drop_block(const float* p, float* out, int64_t n, int64_t offset, float dropout, uint64_t key) {
  const float scale = 1.f / (1.f - dropout);
  for (int64_t i = 0; i < n; ++i) out[i] = counter_uniform(key, offset + i) < dropout ? 0.f : p[i] * scale;
}

}  // namespace

void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, float* probs,
                       float* ctx, float dropout, uint64_t key, const AttentionQuant* quant) {
  const int64_t B = s.batch, T = s.seq, H = s.heads, KV = s.kv_heads, dh = s.head_dim;
  const int64_t qw = H * dh, kw = KV * dh, group = H / KV;
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const int64_t bi = bh / H, hd = bh % H;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dh, 1.f, q + bi * T * qw + hd * dh, qw,
                k + bi * T * kw + (hd / group) * dh, kw, 0.f, probs + bh * T * T, T);
  }
  if (quant && quant->scores) quant->scores(probs);
  const float scale = 1.f / std::sqrt(static_cast<float>(dh));
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < B * H * T; ++row) {
    const int64_t bi = row / (H * T), i = row % T;
    const int64_t visible = s.causal ? std::min<int64_t>(s.lengths[bi], i + 1) : s.lengths[bi];
    softmax_prefix(probs + row * T, T, visible, scale);
  }
  if (quant && quant->probs) quant->probs(probs);
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const int64_t bi = bh / H, hd = bh % H;
    const float* p = probs + bh * T * T;
    std::vector<float> dropped;
    if (dropout > 0.f) {
      dropped.resize(T * T);
      drop_block(p, dropped.data(), T * T, bh * T * T, dropout, key);
      p = dropped.data();
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dh, T, 1.f, p, T, v + bi * T * kw + (hd / group) * dh,
                kw, 0.f, ctx + bi * T * qw + hd * dh, qw);
  }
}

void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v,
                        const float* probs, const float* dctx, float* dq, float* dk, float* dv, float dropout,
                        uint64_t key, const AttentionQuant* quant) {
  const int64_t B = s.batch, T = s.seq, H = s.heads, KV = s.kv_heads, dh = s.head_dim;
  const int64_t qw = H * dh, kw = KV * dh, group = H / KV;
  const float scale = 1.f / std::sqrt(static_cast<float>(dh));
  // Three phases over whole [B, H, T, T] buffers, so that quantizers can act between them. In
  // phases 1 and 3 one task owns a (batch, kv head): the query heads that share it accumulate
  // into its dk/dv in a fixed order, so no two threads touch the same gradient.
  std::vector<float> dP(B * H * T * T);
  // 1. dv += dropped(P)ᵀ dctx, and dP = dctx vᵀ back through the dropout mask.
#pragma omp parallel for schedule(static)
  for (int64_t bk = 0; bk < B * KV; ++bk) {
    const int64_t bi = bk / KV, kh = bk % KV;
    const float* vb = v + bi * T * kw + kh * dh;
    float* dvb = dv + bi * T * kw + kh * dh;
    std::vector<float> dropped(dropout > 0.f ? T * T : 0);
    for (int64_t g = 0; g < group; ++g) {
      const int64_t hd = kh * group + g, bh = bi * H + hd;
      const float* pd = probs + bh * T * T;
      if (dropout > 0.f) {
        drop_block(pd, dropped.data(), T * T, bh * T * T, dropout, key);
        pd = dropped.data();
      }
      const float* dc = dctx + bi * T * qw + hd * dh;
      float* dp = dP.data() + bh * T * T;
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, dh, T, 1.f, pd, T, dc, qw, g == 0 ? 0.f : 1.f, dvb, kw);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dh, 1.f, dc, qw, vb, kw, 0.f, dp, T);
      if (dropout > 0.f) {
        const float keep = 1.f / (1.f - dropout);
        for (int64_t i = 0; i < T * T; ++i)
          dp[i] = counter_uniform(key, bh * T * T + i) < dropout ? 0.f : dp[i] * keep;
      }
    }
  }
  if (quant && quant->probs_backward) quant->probs_backward(dP.data());
  // 2. Softmax backward, and the 1/sqrt(dh) of the scores: masked entries have p = 0.
  const float* softmax = quant && quant->softmax ? quant->softmax : probs;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < B * H * T; ++row) {
    const float* pr = softmax + row * T;
    float* d = dP.data() + row * T;
    double dot = 0;
    for (int64_t j = 0; j < T; ++j) dot += static_cast<double>(d[j]) * pr[j];
    const float c = static_cast<float>(dot);
    for (int64_t j = 0; j < T; ++j) d[j] = pr[j] * (d[j] - c) * scale;
  }
  if (quant && quant->scores_backward) quant->scores_backward(dP.data());
  // 3. dq = dS k, dk += dSᵀ q.
#pragma omp parallel for schedule(static)
  for (int64_t bk = 0; bk < B * KV; ++bk) {
    const int64_t bi = bk / KV, kh = bk % KV;
    const float* kb = k + bi * T * kw + kh * dh;
    float* dkb = dk + bi * T * kw + kh * dh;
    for (int64_t g = 0; g < group; ++g) {
      const int64_t hd = kh * group + g, bh = bi * H + hd;
      const float* ds = dP.data() + bh * T * T;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dh, T, 1.f, ds, T, kb, kw, 0.f,
                  dq + bi * T * qw + hd * dh, qw);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, dh, T, 1.f, ds, T, q + bi * T * qw + hd * dh, qw,
                  g == 0 ? 0.f : 1.f, dkb, kw);
    }
  }
}

}  // namespace tquant::train
