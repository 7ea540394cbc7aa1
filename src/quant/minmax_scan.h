#pragma once
// Min, max and a non-finite flag of a float span in one pass — the first step of every range
// estimator and of per-token quantization.
//
// GCC does not vectorise a float min/max *reduction* unless NaN and signed-zero semantics are
// relaxed (-ffinite-math-only -fno-signed-zeros), which we do not want globally, so this keeps
// 16 independent lanes in GCC vector types and folds them at the end. min and max are exact, so
// the lane split cannot change the result — except which zero (-0 or +0) wins a tie, and callers
// normalise zeros (+ 0.f) for exactly that reason.
#include <cstdint>
#include <cstring>

namespace tquant {

struct MinMaxScan {
  float lo, hi;
  bool bad;  // saw NaN or ±inf
};

// n >= 1.
inline MinMaxScan minmax_scan(const float* x, int64_t n) {
  typedef float v4 __attribute__((vector_size(16)));
  constexpr int kLanes = 4, kVecs = 4, kStep = kLanes * kVecs;
  v4 lo[kVecs], hi[kVecs], chk[kVecs];
  const v4 first = {x[0], x[0], x[0], x[0]};
  for (int k = 0; k < kVecs; ++k) {
    lo[k] = hi[k] = first;
    chk[k] = v4{0.f, 0.f, 0.f, 0.f};
  }
  int64_t i = 0;
  for (; i + kStep <= n; i += kStep)
    for (int k = 0; k < kVecs; ++k) {
      v4 v;
      std::memcpy(&v, x + i + k * kLanes, sizeof v);
      chk[k] += v - v;  // stays 0 while finite; NaN (sticky) once a NaN or ±inf was seen
      lo[k] = v < lo[k] ? v : lo[k];
      hi[k] = v > hi[k] ? v : hi[k];
    }
  MinMaxScan m{x[0], x[0], false};
  for (int k = 0; k < kVecs; ++k)
    for (int l = 0; l < kLanes; ++l) {
      m.lo = lo[k][l] < m.lo ? lo[k][l] : m.lo;
      m.hi = hi[k][l] > m.hi ? hi[k][l] : m.hi;
      m.bad |= chk[k][l] != 0.f;
    }
  for (; i < n; ++i) {
    const float v = x[i];
    m.bad |= (v - v) != 0.f;
    m.lo = v < m.lo ? v : m.lo;
    m.hi = v > m.hi ? v : m.hi;
  }
  return m;
}

}  // namespace tquant
