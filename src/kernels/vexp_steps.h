#pragma once
// The definition in vexp.h as code, written once for every level: the constants, the exp steps
// as a template over a level's operations (O::F a float, or a vector of them), and the tree that
// ends every sum. The scalar kernel instantiates it with std::fma on floats, the SIMD kernels with
// their intrinsics, so every level performs the same operations on the same constants.
//
// Internal linkage on purpose (see qgemv_q8act_block.h): a shared inline copy could be one the
// linker takes from an AVX-512 file. The SIMD files include this inside their target region, so
// that exp_steps is compiled for their target and inlines their operations; they include the
// standard headers it needs first, outside the region.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>

namespace tquant::vexp {
namespace {

// Partial sums: element i goes to i % kLanes.
constexpr int kLanes = 16;

constexpr float kLog2e = 0x1.715476p+0f;   // log2(e) rounded to float
constexpr float kRound = 0x1.8p+23f;       // 1.5·2^23: adding it rounds |v| < 2^22 to an integer
constexpr float kLn2Hi = 0x1.62e430p-1f;   // ln 2 rounded to float ...
constexpr float kLn2Lo = -0x1.05c610p-29f; // ... and the rest, ln 2 − kLn2Hi rounded
// Minimax for exp on [−ln2/2 − 1e-4, ln2/2 + 1e-4] in relative error with c0 = c1 = 1, the others
// rounded to float one at a time from c2 up, refitting the higher ones after each: 3.1e-9
// (0.05 ulp) in exact arithmetic. Highest degree first, in Horner order.
constexpr float kPoly[] = {0x1.6a504ep-10f, 0x1.123976p-7f, 0x1.5558acp-5f, 0x1.555492p-3f, 0x1.fffffcp-2f,
                           1.f, 1.f};
// exp(kHi) is the largest exp below FLT_MAX, the next float's rounds to +Inf; exp(kLo) is the
// smallest at or above FLT_MIN. Inside [kLo, kHi], n is in [−126, 128] and p·2^n is normal, so
// adding n to p's exponent field cannot overflow or underflow it (n = 128 only comes with p < 1).
constexpr float kHi = 0x1.62e42ep+6f;   // 88.72283
constexpr float kLo = -0x1.5d589ep+6f;  // −87.33654

// exp(x) per the definition. O provides F; F set1(float); F fma(F a, F b, F c) (a·b + c, one
// rounding); F sub(F, F); F add_exponent(F p, F t) (p's bits + t's bits << 23, as uint32);
// M greater(F, F), less(F, F), is_nan(F); F select(M, F if_true, F if_false).
template <class O>
inline typename O::F exp_steps(typename O::F x) {
  using F = typename O::F;
  const F t = O::fma(x, O::set1(kLog2e), O::set1(kRound));
  const F n = O::sub(t, O::set1(kRound));
  F r = O::fma(n, O::set1(-kLn2Hi), x);
  r = O::fma(n, O::set1(-kLn2Lo), r);
  F p = O::set1(kPoly[0]);
  for (size_t k = 1; k < std::size(kPoly); ++k) p = O::fma(p, r, O::set1(kPoly[k]));
  // Outside [kLo, kHi] (and for NaN) the steps above produce garbage that these replace.
  F y = O::add_exponent(p, t);
  y = O::select(O::greater(x, O::set1(kHi)), O::set1(INFINITY), y);
  y = O::select(O::less(x, O::set1(kLo)), O::set1(0.f), y);
  return O::select(O::is_nan(x), x, y);
}

// Adds lanes i and i + h for h = 8, 4, 2, 1 (the tree every level ends with).
inline double reduce_lanes(double* acc) {
  for (int h = kLanes / 2; h >= 1; h /= 2)
    for (int i = 0; i < h; ++i) acc[i] += acc[i + h];
  return acc[0];
}

}  // namespace
}  // namespace tquant::vexp
