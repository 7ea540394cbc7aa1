#include "kernels/qgemv_q8act.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "core/error.h"
#include "kernels/packed_row_slices.h"

namespace tquant {
namespace {

void require_supported(const PackedMatrix& w) {
  if (!packed_q8act_supported(w))
    fail("packed_matmul_q8act: {}-bit codes in groups of {} columns: int8 activation blocks of {} need groups of a "
         "multiple of {}", w.bits, w.group, Q8Activations::kBlock, Q8Activations::kBlock);
}

// One block of 32 (see qgemv_q8act.h). Plain loops the compiler vectorizes at baseline x86-64.
void quantize_block(const float* x, int8_t* q, float& d, int32_t& sum) {
  float amax = 0.f;
  bool finite = true;
  for (int j = 0; j < 32; ++j) {
    const float a = std::fabs(x[j]);
    finite &= a <= FLT_MAX;  // false for Inf and NaN
    amax = a > amax ? a : amax;
  }
  d = finite ? amax / 127.f : NAN;
  sum = 0;
  if (!finite || d == 0.f) {  // d == 0 also when amax is so small that amax / 127 underflows
    std::fill(q, q + 32, int8_t{0});
    return;
  }
  // (v + 1.5·2^23) − 1.5·2^23 rounds v to an integer, ties to even, for |v| < 2^22 (here ≤ ~128)
  // in the default rounding mode; unlike nearbyint it vectorizes without SSE4.1. The clamp only
  // matters for a subnormal d, whose rounding can leave max|x| / d above 127.5.
  constexpr float kRound = 12582912.f;
  for (int j = 0; j < 32; ++j) {
    const float v = (x[j] / d + kRound) - kRound;
    const int32_t c = static_cast<int32_t>(std::min(127.f, std::max(-127.f, v)));
    q[j] = static_cast<int8_t>(c);
    sum += c;
  }
}

}  // namespace

Q8Activations quantize_activations_q8(const float* x, int64_t tokens, int64_t cols) {
  if (tokens < 0 || cols <= 0 || cols % Q8Activations::kBlock != 0)
    fail("quantize_activations_q8: [{}, {}] needs a positive multiple of {} columns", tokens, cols,
         Q8Activations::kBlock);
  Q8Activations a;
  a.tokens = tokens;
  a.cols = cols;
  const int64_t n = tokens * a.blocks();
  a.q.resize(static_cast<size_t>(tokens * cols));
  a.d.resize(static_cast<size_t>(n));
  a.sum.resize(static_cast<size_t>(n));
#pragma omp parallel for schedule(static) if (n >= 1024)
  for (int64_t b = 0; b < n; ++b) quantize_block(x + b * 32, a.q.data() + b * 32, a.d[b], a.sum[b]);
  return a;
}

bool packed_q8act_supported(const PackedMatrix& w) {
  return w.format != QFormat::Packed || (w.group % Q8Activations::kBlock == 0);
}

SimdLevel packed_matmul_q8act_level(const PackedMatrix& w, SimdLevel level) {
  if (w.format != QFormat::Packed) return level;
  return (w.bits == 2 || w.bits == 4 || w.bits == 8) ? level : SimdLevel::Scalar;
}

void packed_matmul_q8act(const PackedMatrix& w, const Q8Activations& xq, const float* bias, float* y) {
  require_supported(w);
  if (xq.cols != w.cols) fail("packed_matmul_q8act: activations of width {} for {} weight columns", xq.cols, w.cols);
  if (xq.tokens == 0 || w.rows == 0) return;
  const SimdLevel level = packed_matmul_q8act_level(w, simd_level());
  auto* kernel = level == SimdLevel::AVX512 ? q8act::matmul_avx512
                 : level == SimdLevel::AVX2 ? q8act::matmul_avx2
                                            : q8act::matmul_scalar;
  for_row_slices(w.rows, xq.tokens, bias, y, [&](int64_t r0, int64_t r1) { kernel(w, xq, r0, r1, y); });
}

void packed_matmul_q8act(const PackedMatrix& w, const float* x, int64_t tokens, const float* bias, float* y) {
  if (tokens < 0) fail("packed_matmul_q8act: negative token count {}", tokens);
  if (tokens == 0 || w.rows == 0) return;
  require_supported(w);
  packed_matmul_q8act(w, quantize_activations_q8(x, tokens, w.cols), bias, y);
}

}  // namespace tquant
