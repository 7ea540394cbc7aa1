#include "quant/affine.h"

#include "core/error.h"

namespace tquant {

void check_bits(int bits, std::string_view where) {
  if (bits < kMinBits || bits > kMaxBits)
    fail("{}: {} bits is not supported (use {}..{})", where, bits, kMinBits, kMaxBits);
}

ScaleZero scale_zero_from_range(Range r, int bits, bool symmetric, std::string_view where) {
  check_bits(bits, where);
  if (!std::isfinite(r.lo) || !std::isfinite(r.hi))
    fail("{}: range [{}, {}] is not finite", where, r.lo, r.hi);
  if (r.lo > r.hi) fail("{}: range [{}, {}] has lo > hi", where, r.lo, r.hi);
  ScaleZero out;
  if (symmetric) {
    const float absmax = std::max(std::fabs(r.lo), std::fabs(r.hi));
    out.scale = absmax / static_cast<float>(code_max(bits, true));
    out.zero_point = 0.f;
    if (!(out.scale >= kZeroRangeScale)) out.scale = kZeroRangeScale;
    return out;
  }
  const float lo = std::min(r.lo, 0.f), hi = std::max(r.hi, 0.f);
  const float qmax = static_cast<float>(code_max(bits, false));
  out.scale = (hi - lo) / qmax;
  if (!(out.scale >= kZeroRangeScale)) out.scale = kZeroRangeScale;
  // + 0.f turns a -0 (from -lo with lo = +0) into +0 so saved parameters are reproducible.
  out.zero_point = std::clamp(std::nearbyint(-lo / out.scale), 0.f, qmax) + 0.f;
  return out;
}

}  // namespace tquant
