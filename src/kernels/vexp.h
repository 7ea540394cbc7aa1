#pragma once
// A float32 exponential for whole rows, and the reductions softmax and log-sum-exp need, at
// every SIMD level with bit-identical results (the scalar kernel is the reference; the SIMD ones
// are tested against it bit for bit).
//
// exp(x), the definition (kernels/vexp_steps.h has it in code, once for every level):
//   t = fma(x, log2e, 1.5·2^23)          n = t − 1.5·2^23 = round-half-even(x·log2e), one rounding
//   r = fma(n, −ln2_hi, x)               exact (Cody–Waite with a fused multiply-add)
//   r = fma(n, −ln2_lo, r)               |r| ≤ ln2/2 + 1e-5
//   p = c6; p = fma(p, r, c_k) for k = 5..0   (Horner, degree 6, c1 = c0 = 1)
//   exp(x) = p · 2^n, formed by adding n to p's exponent bits (p ∈ [0.7, 1.42])
// with every constant a float32. Against exp in double over every float of [−87.33654, 88.72283]
// the error is at most 0.89 ulp of the result (7.63e-8 relative): faithfully rounded, though not
// always the nearest float.
// Special values: x > 88.72283 (the largest float whose exp rounds to a finite float) gives +Inf,
// like a correctly rounded expf; x < −87.33654 (where exp(x) falls below FLT_MIN) gives 0:
// subnormal results are flushed to zero rather than computed, which keeps the exponent trick
// valid everywhere it is used and costs nothing a softmax can see; −Inf gives 0, NaN a NaN.
//
// Sums (exp_sub_sum, sum_exp_sub): element i goes to partial sum i mod 16, in double, and the
// 16 partial sums are added as a tree (lanes i and i + h for h = 8, 4, 2, 1). The order is part
// of the definition, so the result depends neither on the SIMD level nor on how a caller
// splits work over threads (rows are never split). Double because the float exps already carry
// up to 7.6e-8 relative error each, and a float sum of 2048 vocabulary terms (128 per lane)
// could add several times that again; converting to double costs two instructions per eight
// values next to the exp's fifteen.
//
// Maxima are exact in any order, so max_value and scale_max agree across levels too (a NaN
// input makes every result derived from the row NaN at every level; which NaN may differ).
#include <cstdint>

namespace tquant {

// The definition applied to one value (the scalar kernel's own function).
float exp_ref(float x);

// y[i] = exp(x[i]); y may be x.
void exp_rows(const float* x, float* y, int64_t n);

// max x[i]; −Inf for n = 0.
float max_value(const float* x, int64_t n);
// x[i] *= scale (one float multiply each), then max x[i]; −Inf for n = 0.
float scale_max(float* x, int64_t n, float scale);

// x[i] = exp(x[i] − shift) (the difference rounded to float first); returns Σ x[i] as defined
// above.
double exp_sub_sum(float* x, int64_t n, float shift);
// The same sum without writing the exponentials.
double sum_exp_sub(const float* x, int64_t n, float shift);

// log Σ exp(x[i]) = m + log Σ exp(x[i] − m) with m = max x[i], in double. m itself when it is
// not finite: −Inf for n = 0 or an all −Inf row, +Inf when an element is +Inf; NaN when one is.
double log_sum_exp(const float* x, int64_t n);

namespace vexp {
// One level's kernels (no threading); exp_sub_sum's out may be null (do not write) or x.
struct Kernels {
  float (*max_value)(const float* x, int64_t n);
  float (*scale_max)(float* x, int64_t n, float scale);
  double (*exp_sub_sum)(const float* x, int64_t n, float shift, float* out);
};
extern const Kernels kScalar, kAvx2, kAvx512;
}  // namespace vexp

}  // namespace tquant
