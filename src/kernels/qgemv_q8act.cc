#include "kernels/qgemv_q8act.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include <emmintrin.h>

#include "core/error.h"
#include "kernels/packed_row_slices.h"
#include "kernels/qgemv_q8act_tiles.h"

namespace tquant {
namespace {

void require_supported(const PackedMatrix& w) {
  if (!packed_q8act_supported(w))
    fail("packed_matmul_q8act: {}-bit codes in groups of {} columns: int8 activation blocks of {} need groups of a "
         "multiple of {}", w.bits, w.group, Q8Activations::kBlock, Q8Activations::kBlock);
}

// One block of 32 (see qgemv_q8act.h), 4 values a step in SSE2 (baseline x86-64): GCC 12 leaves
// the plain loops scalar, and at 512 tokens they took a tenth of a 4096 × 4096 product's time.
void quantize_block(const float* x, int8_t* q, float& d, int32_t& sum) {
  const __m128 magnitude = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff)), largest = _mm_set1_ps(FLT_MAX);
  __m128 amax = _mm_setzero_ps();
  int finite = 0xF;
  for (int j = 0; j < 32; j += 4) {
    const __m128 a = _mm_and_ps(_mm_loadu_ps(x + j), magnitude);
    finite &= _mm_movemask_ps(_mm_cmple_ps(a, largest));  // false for Inf and NaN
    amax = _mm_max_ps(amax, a);  // a NaN only matters where `finite` is false anyway
  }
  amax = _mm_max_ps(amax, _mm_shuffle_ps(amax, amax, 0x4E));
  amax = _mm_max_ps(amax, _mm_shuffle_ps(amax, amax, 0xB1));
  d = finite == 0xF ? _mm_cvtss_f32(amax) / 127.f : NAN;
  sum = 0;
  if (finite != 0xF || d == 0.f) {  // d == 0 also when amax is so small that amax / 127 underflows
    std::fill(q, q + 32, int8_t{0});
    return;
  }
  // (v + 1.5·2^23) − 1.5·2^23 rounds v to an integer, ties to even, for |v| < 2^22 (here ≤ ~128)
  // in the default rounding mode, with no SSE4.1 round. The clamp only matters for a subnormal d,
  // whose rounding can leave max|x| / d above 127.5. v is never NaN here, so max/min are exact.
  const __m128 dv = _mm_set1_ps(d), round = _mm_set1_ps(12582912.f), lo = _mm_set1_ps(-127.f), hi = _mm_set1_ps(127.f);
  __m128i total = _mm_setzero_si128();
  for (int j = 0; j < 32; j += 16) {
    __m128i c[4];
    for (int i = 0; i < 4; ++i) {
      const __m128 v = _mm_sub_ps(_mm_add_ps(_mm_div_ps(_mm_loadu_ps(x + j + 4 * i), dv), round), round);
      c[i] = _mm_cvttps_epi32(_mm_min_ps(hi, _mm_max_ps(lo, v)));
      total = _mm_add_epi32(total, c[i]);
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + j),
                     _mm_packs_epi16(_mm_packs_epi32(c[0], c[1]), _mm_packs_epi32(c[2], c[3])));
  }
  total = _mm_add_epi32(total, _mm_shuffle_epi32(total, 0x4E));
  total = _mm_add_epi32(total, _mm_shuffle_epi32(total, 0xB1));
  sum = _mm_cvtsi128_si32(total);
}

}  // namespace

namespace {

// quantize_activations_q8 into a, reusing its storage.
void quantize_into(const float* x, int64_t tokens, int64_t cols, Q8Activations& a) {
  if (tokens < 0 || cols <= 0 || cols % Q8Activations::kBlock != 0)
    fail("quantize_activations_q8: [{}, {}] needs a positive multiple of {} columns", tokens, cols,
         Q8Activations::kBlock);
  a.tokens = tokens;
  a.cols = cols;
  const int64_t n = tokens * a.blocks();
  a.q.resize(static_cast<size_t>(tokens * cols));
  a.d.resize(static_cast<size_t>(n));
  a.sum.resize(static_cast<size_t>(n));
#pragma omp parallel for schedule(static) if (n >= 1024)
  for (int64_t b = 0; b < n; ++b) quantize_block(x + b * 32, a.q.data() + b * 32, a.d[b], a.sum[b]);
}

}  // namespace

void quantize_activations_q8(const float* x, int64_t tokens, int64_t cols, Q8Activations& into) {
  quantize_into(x, tokens, cols, into);
}

Q8Activations quantize_activations_q8(const float* x, int64_t tokens, int64_t cols) {
  Q8Activations a;
  quantize_into(x, tokens, cols, a);
  return a;
}

bool packed_q8act_supported(const PackedMatrix& w) {
  return w.format != QFormat::Packed || (w.group % Q8Activations::kBlock == 0);
}

SimdLevel packed_matmul_q8act_level(const PackedMatrix& w, SimdLevel level) {
  if (w.format != QFormat::Packed) return level;
  return (w.bits == 2 || w.bits == 4 || w.bits == 8) ? level : SimdLevel::Scalar;
}

namespace q8act {

void matmul_at(const PackedMatrix& w, const Q8Activations& xq, const float* bias, float* y, SimdLevel level,
               bool avx_vnni) {
  require_supported(w);
  if (xq.cols != w.cols) fail("packed_matmul_q8act: activations of width {} for {} weight columns", xq.cols, w.cols);
  if (xq.tokens == 0 || w.rows == 0) return;
  level = packed_matmul_q8act_level(w, level);
  // The tiled path decodes a slice's weights once up front, which pays off from about 8 tokens
  // under AVX-512 (measured at 4096²: 2 tokens 0.86 ms tiled against 0.45 ms per token) and from
  // 2 under AVX2. Both paths compute the same definition, bit for bit.
  const int64_t tiled_from = level == SimdLevel::AVX512 ? 8 : 2;
  if (level == SimdLevel::Scalar || xq.tokens < tiled_from) {
    auto* kernel = level == SimdLevel::AVX512 ? matmul_avx512 : level == SimdLevel::AVX2 ? matmul_avx2 : matmul_scalar;
    for_row_slices(w.rows, xq.tokens, bias, y, [&](int64_t r0, int64_t r1) { kernel(w, xq, r0, r1, y); });
    return;
  }
  // Many tokens: each weight block is decoded once per call rather than once per token.
  auto* kernel = level == SimdLevel::AVX512 ? gemm_avx512 : avx_vnni ? gemm_avxvnni : gemm_avx2;
  // Kept per calling thread: fresh megabytes every call cost more in page faults than the layout
  // itself. (A lambda names a thread_local rather than capturing it: hence the reference.)
  static thread_local TokenTiles storage;
  TokenTiles& xt = storage;
  tile_tokens(xq, xt);
  for_row_slices(w.rows, xq.tokens, bias, y, [&](int64_t r0, int64_t r1) { kernel(w, xt, r0, r1, y); });
}

}  // namespace q8act

void packed_matmul_q8act(const PackedMatrix& w, const Q8Activations& xq, const float* bias, float* y) {
  q8act::matmul_at(w, xq, bias, y, simd_level(), cpu_has_avx_vnni());
}

void packed_matmul_q8act(const PackedMatrix& w, const float* x, int64_t tokens, const float* bias, float* y) {
  if (tokens < 0) fail("packed_matmul_q8act: negative token count {}", tokens);
  if (tokens == 0 || w.rows == 0) return;
  require_supported(w);
  // Kept per calling thread, like the tiles (qgemv_q8act_tiles.h): fresh pages cost more here.
  static thread_local Q8Activations storage;
  quantize_into(x, tokens, w.cols, storage);
  packed_matmul_q8act(w, storage, bias, y);
}

}  // namespace tquant
