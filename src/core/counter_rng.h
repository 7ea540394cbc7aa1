#pragma once
// Counter-based random numbers: every draw is a pure function of (seed, stream, index), so
// results do not depend on the thread count or on the order in which draws are made, and a
// resumed run can regenerate exactly what an uninterrupted one drew. (std::*_distribution is
// implementation-defined; these formulas are not.)
#include <cmath>
#include <cstdint>

namespace tquant {

// SplitMix64's finaliser: a bijective mixer with full avalanche.
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A stream key from several integers (e.g. seed, step, layer, site).
inline uint64_t stream_key(uint64_t a, uint64_t b = 0, uint64_t c = 0, uint64_t d = 0) {
  return mix64(mix64(mix64(mix64(a) ^ b) ^ c) ^ d);
}

inline uint64_t counter_bits(uint64_t key, uint64_t index) { return mix64(key ^ mix64(index)); }

// Uniform in [0, 1) with 24 random bits (every value exactly representable as a float).
inline float counter_uniform(uint64_t key, uint64_t index) {
  return static_cast<float>(counter_bits(key, index) >> 40) * 0x1.0p-24f;
}

// Standard normal by Box–Muller from two independent draws.
inline float counter_normal(uint64_t key, uint64_t index) {
  const uint64_t bits = counter_bits(key, index);
  const double u1 = (static_cast<double>(bits >> 32) + 1.0) * 0x1.0p-32;  // (0, 1]
  const double u2 = static_cast<double>(bits & 0xFFFFFFFFull) * 0x1.0p-32;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

}  // namespace tquant
