#include "quant/quant_params.h"

#include <cmath>

#include "core/error.h"
#include "quant/minmax_scan.h"

namespace tquant {

void validate(const QuantParams& p, std::string_view where) {
  check_bits(p.bits, where);
  const Grouping& g = p.grouping;
  switch (g.granularity) {
    case Granularity::PerTensor:
      if (p.scale.size() != 1) fail("{}: per_tensor needs 1 scale, got {}", where, p.scale.size());
      break;
    case Granularity::PerChannel:
      if (g.channel_axis != 0 && g.channel_axis != 1)
        fail("{}: per_channel channel_axis {} must be 0 (rows) or 1 (columns)", where, g.channel_axis);
      break;
    case Granularity::PerGroup:
      if (g.group_size <= 0) fail("{}: per_group group_size {} must be positive", where, g.group_size);
      break;
    case Granularity::PerEmbeddingGroup: {
      const int64_t k = channel_group_count(g.channel_group, where);
      if (p.groups() != k)
        fail("{}: channel_group has {} groups but there are {} scales", where, k, p.scale.size());
      break;
    }
    case Granularity::PerToken:
      if (!p.scale.empty() || !p.zero_point.empty())
        fail("{}: per_token ranges are dynamic; scale and zero_point must be empty", where);
      break;
  }
  if (p.zero_point.size() != p.scale.size())
    fail("{}: {} scales but {} zero points", where, p.scale.size(), p.zero_point.size());
  for (size_t i = 0; i < p.scale.size(); ++i) {
    if (!std::isfinite(p.scale[i]) || !(p.scale[i] > 0.f))
      fail("{}: scale[{}] = {} must be finite and positive", where, i, p.scale[i]);
    const float z = p.zero_point[i];
    if (!std::isfinite(z) || std::fabs(z) > kMaxZeroPoint)
      fail("{}: zero_point[{}] = {} must be finite with magnitude <= {}", where, i, z, kMaxZeroPoint);
    if (p.symmetric && z != 0.f)
      fail("{}: zero_point[{}] = {} but symmetric quantization has zero point 0", where, i, z);
  }
}

void check_fits(const QuantParams& p, int64_t rows, int64_t cols, std::string_view where) {
  validate(p, where);
  const int64_t need = group_count(p.grouping, rows, cols, where);
  if (p.grouping.granularity != Granularity::PerToken && p.groups() != need)
    fail("{}: {} {} tensor [{}, {}] needs {} scales, the parameters have {}", where,
         granularity_name(p.grouping.granularity),
         p.grouping.granularity == Granularity::PerChannel
             ? (p.grouping.channel_axis == 0 ? "(rows)" : "(columns)")
             : "",
         rows, cols, need, p.groups());
}

QuantParams params_from_ranges(int bits, bool symmetric, Grouping grouping,
                               const std::vector<Range>& ranges, std::string_view where) {
  check_bits(bits, where);
  QuantParams p;
  p.bits = bits;
  p.symmetric = symmetric;
  p.grouping = std::move(grouping);
  p.scale.resize(ranges.size());
  p.zero_point.resize(ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    const ScaleZero sz = scale_zero_from_range(ranges[i], bits, symmetric, where);
    p.scale[i] = sz.scale;
    p.zero_point[i] = sz.zero_point;
  }
  validate(p, where);
  return p;
}

QuantParams per_token_params(const float* x, int64_t rows, int64_t cols, int bits, bool symmetric,
                             std::string_view where) {
  check_bits(bits, where);
  if (cols <= 0) fail("{}: per_token quantization of a tensor with {} columns", where, cols);
  std::vector<Range> ranges(rows);
  bool bad = false;
#pragma omp parallel for schedule(static) reduction(|| : bad) if (rows * cols > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const MinMaxScan m = minmax_scan(x + r * cols, cols);
    bad = bad || m.bad;
    ranges[r] = {m.lo + 0.f, m.hi + 0.f};  // + 0.f: -0 -> +0, whichever zero min/max kept
  }
  if (bad) {
    for (int64_t i = 0; i < rows * cols; ++i)
      if (!std::isfinite(x[i]))
        fail("{}: non-finite value {} at row {}, column {} (a per-token range needs finite values)", where, x[i],
             i / cols, i % cols);
  }
  return params_from_ranges(bits, symmetric, per_channel(0), ranges, where);
}

}  // namespace tquant
