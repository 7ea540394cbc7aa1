#include "kernels/int8_gemm.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/cpu_features.h"

namespace tquant {

Int8Weight make_int8_weight(std::span<const int8_t> codes, int64_t n, int64_t k, std::span<const float> row_scale,
                            std::span<const int32_t> channel_group, std::string_view where) {
  if (n <= 0 || k <= 0) fail("{}: bad int8 weight shape [{}, {}]", where, n, k);
  if (static_cast<int64_t>(codes.size()) != n * k) fail("{}: {} codes for a [{}, {}] weight", where, codes.size(), n, k);
  if (static_cast<int64_t>(row_scale.size()) != n) fail("{}: {} row scales for {} rows", where, row_scale.size(), n);
  for (int64_t r = 0; r < n; ++r)
    if (!std::isfinite(row_scale[r]) || !(row_scale[r] > 0.f))
      fail("{}: weight scale {} of row {} is not finite and positive", where, row_scale[r], r);
  if (!channel_group.empty() && static_cast<int64_t>(channel_group.size()) != k)
    fail("{}: the activation groups cover {} columns, the weight has {}", where, channel_group.size(), k);

  // Columns gathered group by group, in their original order within a group.
  int32_t G = 1;
  for (int32_t g : channel_group) {
    if (g < 0) fail("{}: negative activation group id {}", where, g);
    G = std::max(G, g + 1);
  }
  std::vector<std::vector<int32_t>> members(G);
  for (int64_t c = 0; c < k; ++c) members[channel_group.empty() ? 0 : channel_group[c]].push_back(static_cast<int32_t>(c));
  Int8Weight w;
  w.n = n;
  w.k = k;
  w.np = (n + Int8Weight::kPanelRows - 1) / Int8Weight::kPanelRows * Int8Weight::kPanelRows;
  w.group_begin.push_back(0);
  for (int32_t g = 0; g < G; ++g) {
    if (members[g].empty()) fail("{}: activation group {} of {} has no columns", where, g, G);
    if (static_cast<int64_t>(members[g].size()) > Int8Weight::kMaxGroupWidth)
      fail("{}: activation group {} spans {} columns; the int32 accumulation allows {}", where, g, members[g].size(),
           Int8Weight::kMaxGroupWidth);
    const int64_t width = (static_cast<int64_t>(members[g].size()) + Int8Weight::kGroupAlign - 1) /
                          Int8Weight::kGroupAlign * Int8Weight::kGroupAlign;
    for (int64_t i = 0; i < width; ++i)
      w.column.push_back(i < static_cast<int64_t>(members[g].size()) ? members[g][i] : -1);
    w.group_begin.push_back(w.group_begin.back() + width);
  }
  w.kp = w.group_begin.back();

  w.rows.assign(static_cast<size_t>(n * w.kp), 0);
  w.row_sum.assign(static_cast<size_t>(G * w.np), 0);
  for (int64_t r = 0; r < n; ++r)
    for (int32_t g = 0; g < G; ++g)
      for (int64_t j = w.group_begin[g]; j < w.group_begin[g + 1]; ++j) {
        if (w.column[j] < 0) continue;
        const int8_t v = codes[r * k + w.column[j]];
        w.rows[r * w.kp + j] = v;
        w.row_sum[g * w.np + r] += v;
      }
  // Panel p, step s holds rows 16p..16p+15, columns 4s..4s+3: one 64-byte vpdpbusd operand.
  w.panels.assign(static_cast<size_t>(w.np * w.kp), 0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < w.kp; ++j)
      w.panels[((r / 16) * (w.kp / 4) + j / 4) * 64 + (r % 16) * 4 + j % 4] = w.rows[r * w.kp + j];
  w.scale.assign(static_cast<size_t>(w.np), 0.f);
  std::copy(row_scale.begin(), row_scale.end(), w.scale.begin());
  return w;
}

void int8_gemm(const Int8Activations& a, const Int8Weight& w, float* y) {
  const int64_t G = w.groups();
  if (a.kp != w.kp) fail("int8_gemm: activations are {} columns wide, the weight stores {}", a.kp, w.kp);
  if (static_cast<int64_t>(a.codes.size()) < a.m * a.kp)
    fail("int8_gemm: {} activation codes for {} x {}", a.codes.size(), a.m, a.kp);
  const int64_t params = (a.per_row ? a.m : 1) * G;
  if (static_cast<int64_t>(a.scale.size()) != params || static_cast<int64_t>(a.offset.size()) != params)
    fail("int8_gemm: {} activation scales and {} offsets, expected {} ({} groups{})", a.scale.size(), a.offset.size(),
         params, G, a.per_row ? ", per token" : "");
  if (a.m == 0) return;
  const SimdLevel level = simd_level();
  auto* kernel = level == SimdLevel::AVX512 ? int8::gemm_avx512
                 : level == SimdLevel::AVX2 ? int8::gemm_avx2
                                            : int8::gemm_scalar;
  constexpr int64_t kSlice = 32;  // two VNNI panels
  const int64_t slices = (w.n + kSlice - 1) / kSlice;
#pragma omp parallel for schedule(static)
  for (int64_t s = 0; s < slices; ++s) kernel(a, w, s * kSlice, std::min(w.n, (s + 1) * kSlice), y);
}

}  // namespace tquant
