// AVX-512 kernels for packed_matmul: 32 weights (one ggml block, or 32 tquant codes) decode into
// two zmm registers, which multiply up to 4 tokens at once (4 rows x 4 tokens of accumulators).
// Compiled for AVX-512 through the target pragma below; only called when the CPU has it.
#include "kernels/simd_bytes.h"

#include "kernels/qgemv.h"
#include "kernels/qgemv_dispatch.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")

namespace tquant::qgemv {
namespace {

using simd::half_at;
using simd::u32_at;

// Each decoder writes weights [32c, 32c + 16) to lo and [32c + 16, 32c + 32) to hi, as
// PackedMatrix::weight computes them (separate multiply and add: this file is built with
// -ffp-contract=off so that d·q + m is not fused).
//
// Codes of at most 4 bits become floats through a 16-entry table and vpermps, which reads only
// the low 4 bits of each index lane: one instruction in place of mask, subtract and convert.
// table[i] = i − z is exact, so the weights stay bit for bit those of the dequantizer.
__m512 code_table(float z) {
  const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  return _mm512_sub_ps(iota, _mm512_set1_ps(z));
}
template <QFormat F, int Bits>
struct Decode;

template <>
struct Decode<QFormat::Q4_0, 4> {
  void operator()(const PackedMatrix& w, int64_t r, int64_t c, __m512& lo, __m512& hi) const {
    const uint8_t* blk = w.row(r) + c * 18;
    const __m512 d = _mm512_set1_ps(half_at(blk));
    const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2)));
    const __m512 table = code_table(8.f);
    lo = _mm512_mul_ps(_mm512_permutexvar_ps(v, table), d);  // low nibble: index bits 0..3
    hi = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), table), d);
  }
};

template <>
struct Decode<QFormat::Q4_1, 4> {
  void operator()(const PackedMatrix& w, int64_t r, int64_t c, __m512& lo, __m512& hi) const {
    const uint8_t* blk = w.row(r) + c * 20;
    const __m512 d = _mm512_set1_ps(half_at(blk)), m = _mm512_set1_ps(half_at(blk + 2));
    const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 4)));
    const __m512 table = code_table(0.f);
    lo = _mm512_add_ps(_mm512_mul_ps(_mm512_permutexvar_ps(v, table), d), m);
    hi = _mm512_add_ps(_mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), table), d), m);
  }
};

template <>
struct Decode<QFormat::Q8_0, 8> {
  void operator()(const PackedMatrix& w, int64_t r, int64_t c, __m512& lo, __m512& hi) const {
    const uint8_t* blk = w.row(r) + c * 34;
    const __m512 d = _mm512_set1_ps(half_at(blk));
    lo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2)))), d);
    hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 18)))), d);
  }
};

// tquant codes: 32 codes of `Bits` bits start on a byte boundary (32·Bits is a multiple of 8).
// Below 8 bits, every run of 8 codes fits in one 32-bit word at byte offset i·Bits; each word is
// spread over 8 lanes and shifted by j·Bits. The group (a multiple of 32) gives s and z.
template <int Bits>
struct Decode<QFormat::Packed, Bits> {
  void operator()(const PackedMatrix& w, int64_t r, int64_t c, __m512& lo, __m512& hi) const {
    const uint8_t* p = w.row(r) + c * 4 * Bits;
    const int64_t g = r * w.groups_per_row() + (c * 32) / w.group;
    const __m512 s = _mm512_set1_ps(w.scale[g]);
    __m512i q0, q1;
    if constexpr (Bits == 8) {
      q0 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      q1 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
    } else {
      __m128i words;
      if constexpr (Bits == 4)
        words = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      else
        words = _mm_setr_epi32(static_cast<int>(u32_at(p)), static_cast<int>(u32_at(p + Bits)),
                               static_cast<int>(u32_at(p + 2 * Bits)), static_cast<int>(u32_at(p + 3 * Bits)));
      const __m512i wide = _mm512_castsi128_si512(words);
      const __m512i shifts = _mm512_setr_epi32(0, Bits, 2 * Bits, 3 * Bits, 4 * Bits, 5 * Bits, 6 * Bits, 7 * Bits, 0,
                                               Bits, 2 * Bits, 3 * Bits, 4 * Bits, 5 * Bits, 6 * Bits, 7 * Bits);
      const __m512i idx01 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
      const __m512i idx23 = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
      q0 = _mm512_srlv_epi32(_mm512_permutexvar_epi32(idx01, wide), shifts);
      q1 = _mm512_srlv_epi32(_mm512_permutexvar_epi32(idx23, wide), shifts);
      if constexpr (Bits < 4) {  // the table reads 4 index bits: clear the next code's
        const __m512i mask = _mm512_set1_epi32((1 << Bits) - 1);
        q0 = _mm512_and_si512(q0, mask);
        q1 = _mm512_and_si512(q1, mask);
      }
      const __m512 table = code_table(w.zero[g]);
      lo = _mm512_mul_ps(s, _mm512_permutexvar_ps(q0, table));
      hi = _mm512_mul_ps(s, _mm512_permutexvar_ps(q1, table));
      return;
    }
    const __m512i z = _mm512_set1_epi32(static_cast<int32_t>(w.zero[g]));
    lo = _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_sub_epi32(q0, z)));
    hi = _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_sub_epi32(q1, z)));
  }
};

// R rows from r0, T tokens from t0. Each (row, token) has one accumulator, updated chunk by chunk
// in the same order whatever R and T are, so blocking never changes a result.
template <int R, int T, class Decode>
void tile(const Decode& dec, const PackedMatrix& w, const float* x, int64_t r0, int64_t t0, float* y) {
  const int64_t C = w.cols, chunks = C / 32;
  __m512 acc[R][T];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < T; ++t) acc[i][t] = _mm512_setzero_ps();
  for (int64_t c = 0; c < chunks; ++c) {
    __m512 lo[R], hi[R];
    for (int i = 0; i < R; ++i) dec(w, r0 + i, c, lo[i], hi[i]);
    for (int t = 0; t < T; ++t) {
      const float* xt = x + (t0 + t) * C + c * 32;
      const __m512 xl = _mm512_loadu_ps(xt), xh = _mm512_loadu_ps(xt + 16);
      for (int i = 0; i < R; ++i) {
        acc[i][t] = _mm512_fmadd_ps(lo[i], xl, acc[i][t]);
        acc[i][t] = _mm512_fmadd_ps(hi[i], xh, acc[i][t]);
      }
    }
  }
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < T; ++t) {
      float tail = 0.f;  // codes past the last whole chunk (tquant formats only)
      const float* xt = x + (t0 + t) * C;
      for (int64_t k = chunks * 32; k < C; ++k) tail += w.weight(r0 + i, k) * xt[k];
      y[(t0 + t) * w.rows + r0 + i] = _mm512_reduce_add_ps(acc[i][t]) + tail;
    }
}

template <int R, class Decode>
void rows_all_tokens(const Decode& dec, const PackedMatrix& w, const float* x, int64_t tokens, int64_t r, float* y) {
  int64_t t = 0;
  for (; t + 4 <= tokens; t += 4) tile<R, 4>(dec, w, x, r, t, y);
  switch (tokens - t) {
    case 3: tile<R, 3>(dec, w, x, r, t, y); break;
    case 2: tile<R, 2>(dec, w, x, r, t, y); break;
    case 1: tile<R, 1>(dec, w, x, r, t, y); break;
    default: break;
  }
}

template <class Decode>
void run(const Decode& dec, const PackedMatrix& w, const float* x, int64_t tokens, int64_t r0, int64_t r1, float* y) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) rows_all_tokens<4>(dec, w, x, tokens, r, y);
  for (; r < r1; ++r) rows_all_tokens<1>(dec, w, x, tokens, r, y);
}

}  // namespace

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
void matmul_avx512(const PackedMatrix& w, const float* x, int64_t tokens, int64_t r0, int64_t r1, float* y) {
  if (!with_decoder<Decode, 2, 3, 4, 8>(w, [&](auto dec) { run(dec, w, x, tokens, r0, r1, y); }))
    matmul_scalar(w, x, tokens, r0, r1, y);  // layouts packed_matmul_level sends to the scalar path
}

}  // namespace tquant::qgemv

#pragma GCC pop_options
