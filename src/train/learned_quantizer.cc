#include "train/learned_quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "quant/fake_quant.h"
#include "quant/group_index.h"

namespace tquant::train {
namespace {

// Row blocks of a fixed size: each block's partial sums are added in block order.
constexpr int64_t kRowsPerBlock = 64;

// The group of element (r, c).
struct GroupOf {
  const Grouping& g;
  int64_t cols;
  int64_t per_row;
  int64_t operator()(int64_t r, int64_t c) const {
    switch (g.granularity) {
      case Granularity::PerTensor: return 0;
      case Granularity::PerChannel: return g.channel_axis == 0 ? r : c;
      case Granularity::PerGroup: return r * per_row + c / g.group_size;
      case Granularity::PerEmbeddingGroup: return g.channel_group[c];
      case Granularity::PerToken: break;
    }
    return 0;
  }
};

GroupOf group_of(const Grouping& g, int64_t cols) {
  return {g, cols, g.granularity == Granularity::PerGroup ? cols / g.group_size : 1};
}

std::vector<double> group_counts(const Grouping& g, int64_t rows, int64_t cols, int64_t groups) {
  std::vector<double> n(groups, 0.0);
  const GroupOf of = group_of(g, cols);
  if (g.granularity == Granularity::PerEmbeddingGroup) {
    for (int64_t c = 0; c < cols; ++c) n[of(0, c)] += static_cast<double>(rows);
  } else if (g.granularity == Granularity::PerChannel && g.channel_axis == 1) {
    std::fill(n.begin(), n.end(), static_cast<double>(rows));
  } else {
    const double per_group = static_cast<double>(rows) * cols / groups;
    std::fill(n.begin(), n.end(), per_group);
  }
  return n;
}

// One element's contribution: returns dx and adds (unscaled) ds, dz terms.
inline float element_backward(float x, float dy, float s, float z, float qmin, float qmax, double& ds, double& dz) {
  const float u = x / s + z;
  const float r = std::nearbyint(x / s) + z;
  if (r < qmin || r > qmax) {
    const float q = r < qmin ? qmin : qmax;
    ds += static_cast<double>(dy) * (q - z);
    dz += -static_cast<double>(dy) * s;
    return 0.f;
  }
  ds += static_cast<double>(dy) * (r - u);
  return dy;
}

}  // namespace

LearnedQuantizer LearnedQuantizer::from_params(std::string name, const QuantParams& p, bool learn) {
  LearnedQuantizer q;
  q.name = std::move(name);
  q.spec = p;
  q.learn = learn;
  if (p.grouping.granularity == Granularity::PerToken) return q;
  validate(p, q.name);
  const int64_t k = p.groups();
  q.scale = Tensor({k});
  std::memcpy(q.scale.data(), p.scale.data(), sizeof(float) * k);
  if (!p.symmetric) {
    q.zero_point = Tensor({k});
    std::memcpy(q.zero_point.data(), p.zero_point.data(), sizeof(float) * k);
  }
  return q;
}

bool LearnedQuantizer::dynamic() const { return spec.grouping.granularity == Granularity::PerToken; }

QuantParams LearnedQuantizer::params() const {
  QuantParams p = spec;
  if (dynamic()) return p;
  const int64_t k = scale.numel();
  p.scale.assign(scale.data(), scale.data() + k);
  if (!zero_point.empty())
    for (int64_t i = 0; i < k; ++i)
      p.zero_point[i] = std::clamp(std::nearbyint(zero_point[i]), static_cast<float>(p.qmin()),
                                   static_cast<float>(p.qmax()));
  return p;
}

void LearnedQuantizer::constrain() {
  if (dynamic()) return;
  for (int64_t i = 0; i < scale.numel(); ++i) {
    if (!std::isfinite(scale[i])) fail("quantizer {}: the learnt scale became {}", name, scale[i]);
    scale[i] = std::max(scale[i], 1e-8f);
  }
  // An empty Tensor reports numel() 1 (the product of no dimensions): test emptiness first.
  for (int64_t i = 0; !zero_point.empty() && i < zero_point.numel(); ++i) {
    if (!std::isfinite(zero_point[i])) fail("quantizer {}: the learnt zero point became {}", name, zero_point[i]);
    zero_point[i] = std::clamp(zero_point[i], static_cast<float>(spec.qmin()), static_cast<float>(spec.qmax()));
  }
}

void learned_quantize_forward(const LearnedQuantizer& q, float* x, int64_t rows, int64_t cols) {
  fake_quantize(x, rows, cols, q.params(), q.name);
}

void learned_quantize_backward(const LearnedQuantizer& q, const float* x, int64_t rows, int64_t cols, float* dy,
                               float* dscale, float* dzero) {
  if (q.dynamic()) return;  // identity
  const QuantParams p = q.params();
  const int64_t groups = group_count(p.grouping, rows, cols, q.name);
  const GroupOf of = group_of(p.grouping, cols);
  const float qmin = static_cast<float>(p.qmin()), qmax = static_cast<float>(p.qmax());
  const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  // Row-bound groups (per-channel rows, per-group) are touched by one block only: no partials.
  const bool row_bound = groups_within_rows(p.grouping);
  std::vector<double> ds_part(row_bound ? groups : blocks * groups, 0.0), dz_part(ds_part.size(), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    double* ds = ds_part.data() + (row_bound ? 0 : blk * groups);
    double* dz = dz_part.data() + (row_bound ? 0 : blk * groups);
    const int64_t r1 = std::min(rows, (blk + 1) * kRowsPerBlock);
    for (int64_t r = blk * kRowsPerBlock; r < r1; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t k = of(r, c), i = r * cols + c;
        dy[i] = element_backward(x[i], dy[i], p.scale[k], p.zero_point[k], qmin, qmax, ds[k], dz[k]);
      }
  }
  if (!q.learn) return;
  const std::vector<double> n = group_counts(p.grouping, rows, cols, groups);
  for (int64_t k = 0; k < groups; ++k) {
    double s = 0, z = 0;
    const int64_t parts = row_bound ? 1 : blocks;
    for (int64_t b = 0; b < parts; ++b) {
      s += ds_part[b * (row_bound ? 0 : groups) + k];
      z += dz_part[b * (row_bound ? 0 : groups) + k];
    }
    const double g = 1.0 / std::sqrt(n[k] * qmax);
    dscale[k] += static_cast<float>(s * g);
    if (dzero && !p.symmetric) dzero[k] += static_cast<float>(z * g);
  }
}

void learned_quantize_backward_ref(const LearnedQuantizer& q, const float* x, int64_t rows, int64_t cols, float* dy,
                                   float* dscale, float* dzero) {
  if (q.dynamic()) return;
  const QuantParams p = q.params();
  GroupIndex index(p.grouping, rows, cols, q.name);
  const float qmin = static_cast<float>(p.qmin()), qmax = static_cast<float>(p.qmax());
  std::vector<double> ds(index.groups(), 0.0), dz(index.groups(), 0.0);
  std::vector<int64_t> group(rows * cols, -1);
  for (int64_t k = 0; k < index.groups(); ++k) {
    if (index.within_rows()) {
      for (int64_t c = index.col_begin(k); c < index.col_end(k); ++c) group[index.row_of(k) * cols + c] = k;
    } else {
      for (int64_t r = 0; r < rows; ++r)
        for (int32_t c : index.columns_of(k)) group[r * cols + c] = k;
    }
  }
  for (int64_t i = 0; i < rows * cols; ++i) {
    const int64_t k = group[i];
    const float s = p.scale[k], z = p.zero_point[k];
    const float code = std::nearbyint(x[i] / s) + z;
    if (code < qmin || code > qmax) {
      ds[k] += static_cast<double>(dy[i]) * ((code < qmin ? qmin : qmax) - z);
      dz[k] -= static_cast<double>(dy[i]) * s;
      dy[i] = 0.f;
    } else {
      ds[k] += static_cast<double>(dy[i]) * (code - (x[i] / s + z));
    }
  }
  if (!q.learn) return;
  for (int64_t k = 0; k < index.groups(); ++k) {
    const double g = 1.0 / std::sqrt(static_cast<double>(index.count(k)) * qmax);
    dscale[k] += static_cast<float>(ds[k] * g);
    if (dzero && !p.symmetric) dzero[k] += static_cast<float>(dz[k] * g);
  }
}

}  // namespace tquant::train
