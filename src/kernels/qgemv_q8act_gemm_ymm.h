#pragma once
// The many-token register block at 256 bits (for qgemv_q8act_gemm.h's driver), shared by the
// AVX2 file (vpmaddubsw + vpmaddwd) and the AVX-VNNI one (vpdpbusd), which differ only in Dot:
//   static constexpr int kR, kT;     // the register block, rows × packs (16 registers in all)
//   static constexpr bool kSigned8;  // wants 8-bit codes as signed bytes
//   template <bool kSignedCodes> static __m256i dot(__m256i acc, __m256i w, __m256i x);
//                                    // acc + the 4 products of each 32-bit lane, exactly
// A tile goes as two halves of 8 blocks (bytes 0..31 and 32..63 of its vectors), the lanes of
// one half the partial sums 0..7 or 8..15 of the definition.
//
// Include it inside the file's target region, after qgemv_q8act_gemm.h. Internal linkage on
// purpose (see qgemv_q8act_block.h).

namespace tquant::q8act {
namespace {

// Unaligned: only the codes' vectors (Vec64) are aligned.
inline __m256i load_ymm(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

template <class Dot>
struct Ymm {
  static constexpr int kR = Dot::kR, kT = Dot::kT;
  static constexpr bool kSigned8 = Dot::kSigned8;

  template <class K, int R, int T>
  static void tile(const RowTiles& wt, int64_t i0, const TokenTiles& xt, int64_t t0, float* y, int64_t ld) {
    using V = __m256i;
    __m256 acc[R][T][2];
    for (int i = 0; i < R; ++i)
      for (int t = 0; t < T; ++t) acc[i][t][0] = acc[i][t][1] = _mm256_setzero_ps();
    for (int64_t g = 0; g < xt.tiles; ++g) {
      const Operands op = operands<kR>(wt, i0, xt, t0, g);
      for (int h = 0; h < 2; ++h) {
        // The integers start at −zero·Σ q_x (exact in int32: |Σ q_x| ≤ 32·127).
        V I[R][T];
        for (int t = 0; t < T; ++t) {
          const V sx = load_ymm(op.sum + 16 * t + 8 * h);
          if constexpr (K::kGroupZero) {
            const V neg = _mm256_sub_epi32(_mm256_setzero_si256(), sx);
            for (int i = 0; i < R; ++i) I[i][t] = _mm256_mullo_epi32(load_ymm(op.zero + 16 * i + 8 * h), neg);
          } else {
            const V start = K::kZero ? _mm256_mullo_epi32(_mm256_set1_epi32(-K::kZero), sx) : _mm256_setzero_si256();
            for (int i = 0; i < R; ++i) I[i][t] = start;
          }
        }
#pragma GCC unroll 8
        for (int k = 0; k < kTileVectors; ++k) {
          V W[R], X[T];
          for (int i = 0; i < R; ++i) W[i] = load_ymm(op.w[k * kR + i].b + 32 * h);
          for (int t = 0; t < T; ++t) X[t] = load_ymm(op.x[k * kTokenGroup + t].b + 32 * h);
          for (int i = 0; i < R; ++i)
            for (int t = 0; t < T; ++t) I[i][t] = Dot::template dot<K::kSignedCodes>(I[i][t], W[i], X[t]);
        }
        for (int i = 0; i < R; ++i) {
          const __m256 s = _mm256_loadu_ps(op.s + 16 * i + 8 * h);
          for (int t = 0; t < T; ++t) {
            const __m256 dx = _mm256_loadu_ps(op.d + 16 * t + 8 * h);
            __m256& a = acc[i][t][h];
            a = _mm256_fmadd_ps(_mm256_mul_ps(s, dx), _mm256_cvtepi32_ps(I[i][t]), a);
            if constexpr (K::kMin) {
              const __m256 sx = _mm256_cvtepi32_ps(load_ymm(op.sum + 16 * t + 8 * h));
              a = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(op.m + 16 * i + 8 * h), dx), sx, a);
            }
          }
        }
      }
    }
    for (int i = 0; i < R; ++i)
      for (int t = 0; t < T; ++t) store_pack(acc[i][t][0], acc[i][t][1], xt, t0 + t, y + i, ld);
  }
};

}  // namespace
}  // namespace tquant::q8act
