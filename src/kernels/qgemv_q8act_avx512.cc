// AVX-512 VNNI kernels for packed_matmul_q8act.
//
// One token (GEMV): four weight blocks meet their activations in one vpdpbusd chain (unsigned
// codes × signed int8), arranged so that each block's partial sums land in one 128-bit lane; four
// such vectors (16 blocks) are transposed into one vector holding a sum per block, in block
// order, which is exactly the lane layout of the definition's 16 partial float sums.
//
// Many tokens (GEMM): the tile layout of qgemv_q8act_tiles.h, through the shared driver of
// qgemv_q8act_gemm.h; here only the register block, 4 rows × 4 tokens of vpdpbusd.
//
// Compiled for AVX-512 through the target pragma below; only called when the CPU has it.

#include "kernels/simd_bytes.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/qgemv_dispatch.h"
#include "kernels/qgemv_q8act.h"
#include "kernels/qgemv_q8act_block.h"
#include "kernels/qgemv_q8act_tiles.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")

#include "kernels/qgemv_q8act_gemm.h"

namespace tquant::q8act {
namespace {

using V = __m512i;

V load64(const void* p) { return _mm512_loadu_si512(p); }
__m128i load16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
__m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// p0 holds blocks 0 and 1 (two 128-bit lanes each), p1 blocks 2 and 3: one block per lane.
V fold(V p0, V p1) {
  return _mm512_add_epi32(_mm512_shuffle_i32x4(p0, p1, 0x88), _mm512_shuffle_i32x4(p0, p1, 0xDD));
}

// Activations of 4 consecutive blocks (128 bytes) as they are.
void natural_x(const int8_t* x, V X[2]) {
  X[0] = load64(x);
  X[1] = load64(x + 64);
}

// The two ways a decoder's two parts cover its blocks. Chained: each part holds half of the same
// blocks, so both dot products add into one accumulator. Folded: the parts hold different blocks,
// whose lanes `fold` brings together.
struct ChainedParts {
  static V dot(const V W[2], const V X[2]) {
    return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), W[0], X[0]), W[1], X[1]);
  }
};
struct FoldedParts {
  static V dot(const V W[2], const V X[2]) {
    return fold(_mm512_dpbusd_epi32(_mm512_setzero_si512(), W[0], X[0]),
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), W[1], X[1]));
  }
};

// Each decoder handles 4 consecutive blocks: load_x arranges the activations, load_w the codes
// (as unsigned bytes, kParts vectors), and dot gives the 4 blocks' partial sums, one block per
// 128-bit lane. kZero is what the integer of a ggml block still has to lose per unit of Σ q_x
// (the 8 of Q4_0, the 128 by which Q8_0's codes were shifted to unsigned); tquant codes use
// their group's zero point.
template <QFormat F, int Bits>
struct Decode;

// Q4_0 and Q4_1: a block's 16 code bytes hold elements 0..15 in the low nibbles, 16..31 in the
// high ones, so the activations go as the first and the second 16 of each block.
template <QFormat F, int BlockBytes, int Offset, int Zero>
struct GgmlNibbles : ChainedParts {
  static constexpr QFormat kFormat = F;
  static constexpr int kParts = 2, kBlockBytes = BlockBytes, kZero = Zero;
  static void load_x(const int8_t* x, V X[2]) {
    const V a = load64(x), b = load64(x + 64);
    X[0] = _mm512_shuffle_i32x4(a, b, 0x88);
    X[1] = _mm512_shuffle_i32x4(a, b, 0xDD);
  }
  static void load_w(const uint8_t* row, int64_t b, V W[2]) {
    const uint8_t* p = row + b * BlockBytes + Offset;
    V v = _mm512_castsi128_si512(load16(p));
    v = _mm512_inserti32x4(v, load16(p + BlockBytes), 1);
    v = _mm512_inserti32x4(v, load16(p + 2 * BlockBytes), 2);
    v = _mm512_inserti32x4(v, load16(p + 3 * BlockBytes), 3);
    const V low = _mm512_set1_epi8(0x0F);
    W[0] = _mm512_and_si512(v, low);
    W[1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
  }
};
template <>
struct Decode<QFormat::Q4_0, 4> : GgmlNibbles<QFormat::Q4_0, 18, 2, 8> {};
template <>
struct Decode<QFormat::Q4_1, 4> : GgmlNibbles<QFormat::Q4_1, 20, 4, 0> {};

// Q8_0: signed codes, made unsigned by flipping the top bit (q + 128); the 128·Σ q_x goes back
// through kZero.
template <>
struct Decode<QFormat::Q8_0, 8> : FoldedParts {
  static constexpr QFormat kFormat = QFormat::Q8_0;
  static constexpr int kParts = 2, kBlockBytes = 34, kZero = 128;
  static void load_x(const int8_t* x, V X[2]) { natural_x(x, X); }
  static void load_w(const uint8_t* row, int64_t b, V W[2]) {
    const uint8_t* p = row + b * 34 + 2;
    const V flip = _mm512_set1_epi8(static_cast<char>(0x80));
    W[0] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(load32(p)), load32(p + 34), 1), flip);
    W[1] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(load32(p + 68)), load32(p + 102), 1), flip);
  }
};

// tquant codes come with two more streams per row (scales, zero points), 12 for 4 rows, more than
// the hardware prefetchers keep ahead of: each run of 4 blocks asks for the codes 1 KiB further
// (and `coefficients` for the scales and zero points 64 groups further). Measured: 4-bit g32
// GEMV ~400 -> ~340 us; ggml blocks (one stream per row) gain nothing from it.
void prefetch_codes(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p + 1024), _MM_HINT_T0); }

// tquant 4-bit: byte k of a block holds codes 2k (low nibble) and 2k + 1; the activations go as
// the even and the odd elements of each block.
template <>
struct Decode<QFormat::Packed, 4> : ChainedParts {
  static constexpr QFormat kFormat = QFormat::Packed;
  static constexpr int kParts = 2;
  static void load_x(const int8_t* x, V X[2]) {
    const V split = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
    const V a = _mm512_shuffle_epi8(load64(x), split), b = _mm512_shuffle_epi8(load64(x + 64), split);
    X[0] = _mm512_permutex2var_epi64(a, _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), b);
    X[1] = _mm512_permutex2var_epi64(a, _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15), b);
  }
  static void load_w(const uint8_t* row, int64_t b, V W[2]) {
    prefetch_codes(row + b * 16);
    const V v = load64(row + b * 16), low = _mm512_set1_epi8(0x0F);
    W[0] = _mm512_and_si512(v, low);
    W[1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
  }
};

// tquant 2-bit: byte k of a block holds codes 4k + j at bits 2j. Each block's 8 bytes fill a
// 128-bit lane twice, shifted by 0 and 2 (part 0: codes 4k, 4k+1) or 4 and 6 (part 1); the
// activations are grouped the same way.
template <>
struct Decode<QFormat::Packed, 2> : ChainedParts {
  static constexpr QFormat kFormat = QFormat::Packed;
  static constexpr int kParts = 2;
  static void load_x(const int8_t* x, V X[2]) {
    const V by_j = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    const V a = _mm512_shuffle_epi8(load64(x), by_j), b = _mm512_shuffle_epi8(load64(x + 64), by_j);
    X[0] = _mm512_permutex2var_epi32(a, _mm512_setr_epi32(0, 4, 1, 5, 8, 12, 9, 13, 16, 20, 17, 21, 24, 28, 25, 29), b);
    X[1] = _mm512_permutex2var_epi32(a, _mm512_setr_epi32(2, 6, 3, 7, 10, 14, 11, 15, 18, 22, 19, 23, 26, 30, 27, 31), b);
  }
  static void load_w(const uint8_t* row, int64_t b, V W[2]) {
    prefetch_codes(row + b * 8);
    const V v = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 0, 1, 1, 2, 2, 3, 3),
                                         _mm512_castsi256_si512(load32(row + b * 8)));
    const V low2 = _mm512_set1_epi8(3);
    W[0] = _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_setr_epi64(0, 2, 0, 2, 0, 2, 0, 2)), low2);
    W[1] = _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_setr_epi64(4, 6, 4, 6, 4, 6, 4, 6)), low2);
  }
};

// tquant 8-bit: the codes are unsigned bytes in element order.
template <>
struct Decode<QFormat::Packed, 8> : FoldedParts {
  static constexpr QFormat kFormat = QFormat::Packed;
  static constexpr int kParts = 2;
  static void load_x(const int8_t* x, V X[2]) { natural_x(x, X); }
  static void load_w(const uint8_t* row, int64_t b, V W[2]) {
    prefetch_codes(row + b * 32);
    W[0] = load64(row + b * 32);
    W[1] = load64(row + b * 32 + 64);
  }
};

// Per-block weight coefficients of 16 blocks from g0 (lanes outside k are not read): the scale s,
// Q4_1's m, and the zero point z of tquant codes.
struct Coefficients {
  __m512 s, m;
  V z;
};

// ggml blocks of a whole group: d (and Q4_1's m) are 16-bit words at a fixed word stride, so
// vpermt2w picks them out of 128-byte windows, kPer blocks per window, into words 0..15 (d) and
// 16..31 (m): far cheaper than a gather. The loads stay inside the group's 16 blocks.
template <class Dec>
struct ScaleWords {
  static constexpr int kStride = Dec::kBlockBytes / 2;  // words per block
  static constexpr bool kWithM = Dec::kFormat == QFormat::Q4_1;
  static constexpr int kPer = (63 - (kWithM ? 1 : 0)) / kStride + 1;  // blocks whose d (and m) lie in 64 words
  static constexpr int kWindows = (kLanes + kPer - 1) / kPer;
  struct Table {
    alignas(64) int16_t idx[kWindows][32];
    uint32_t pick[kWindows];
    uint64_t in_group[kWindows];  // the window's words that belong to the group
  };
  static constexpr Table make() {
    Table t{};
    for (int w = 0; w < kWindows; ++w) {
      for (int j = w * kPer; j < std::min(kLanes, (w + 1) * kPer); ++j) {
        t.idx[w][j] = static_cast<int16_t>((j - w * kPer) * kStride);
        t.pick[w] |= 1u << j;
        if (kWithM) {
          t.idx[w][16 + j] = static_cast<int16_t>((j - w * kPer) * kStride + 1);
          t.pick[w] |= 1u << (16 + j);
        }
      }
      const int words = std::min(64, (kLanes - w * kPer) * kStride);
      t.in_group[w] = words >= 64 ? ~uint64_t{0} : (uint64_t{1} << words) - 1;
    }
    return t;
  }
  static constexpr Table kTable = make();

  static V load(const uint8_t* group) {
    V out = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int w = 0; w < kWindows; ++w) {
      const uint8_t* p = group + w * kPer * Dec::kBlockBytes;
      const V lo = _mm512_maskz_loadu_epi16(static_cast<__mmask32>(kTable.in_group[w]), p);
      const V hi = _mm512_maskz_loadu_epi16(static_cast<__mmask32>(kTable.in_group[w] >> 32), p + 64);
      out = _mm512_mask_mov_epi16(out, kTable.pick[w],
                                  _mm512_permutex2var_epi16(lo, _mm512_load_si512(kTable.idx[w]), hi));
    }
    return out;
  }
};

// tquant codes: which of the loaded groups (from g0's) each of the 16 blocks g0.. falls in, when
// a group spans several blocks. The same for every row, so computed once per group of blocks.
V group_spread(const PackedMatrix& w, int64_t g0) {
  const int64_t per = w.group / 32;
  alignas(64) int32_t spread[kLanes];
  for (int j = 0; j < kLanes; ++j) spread[j] = static_cast<int32_t>((g0 + j) / per - g0 / per);
  return _mm512_load_si512(spread);
}

template <class Dec, bool kWhole>
Coefficients coefficients(const PackedMatrix& w, int64_t r, int64_t g0, __mmask16 k, V spread) {
  Coefficients c{_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_si512()};
  if constexpr (Dec::kFormat == QFormat::Packed) {
    // The groups of blocks g0..g0+15 are consecutive: load them, then spread them over the blocks.
    const int64_t first = g0 / (w.group / 32), groups = w.groups_per_row();
    const __mmask16 have = groups - first >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (groups - first)) - 1);
    const float* scale = w.scale.data() + r * groups + first;
    const float* zero = w.zero.data() + r * groups + first;
    _mm_prefetch(reinterpret_cast<const char*>(scale + 64), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(zero + 64), _MM_HINT_T0);
    __m512 s = _mm512_maskz_loadu_ps(have, scale), z = _mm512_maskz_loadu_ps(have, zero);
    if (w.group != 32) {
      s = _mm512_permutexvar_ps(spread, s);
      z = _mm512_permutexvar_ps(spread, z);
    }
    c.s = s;
    c.z = _mm512_cvttps_epi32(z);
  } else {
    const uint8_t* group = w.row(r) + g0 * Dec::kBlockBytes;
    V words;
    if (kWhole) {
      words = ScaleWords<Dec>::load(group);
    } else {  // the last, partial group: a gather reads only the blocks there are
      const V offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(Dec::kBlockBytes));
      const V raw = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k, offsets, group, 1);
      words = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(raw)),
                                 _mm512_cvtepi32_epi16(_mm512_srli_epi32(raw, 16)), 1);
    }
    c.s = _mm512_cvtph_ps(_mm512_castsi512_si256(words));
    if constexpr (Dec::kFormat == QFormat::Q4_1) c.m = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(words, 1));
  }
  return c;
}

// One group of blocks g0 .. g0+n-1 (n = 16 but in the last group) for R rows from r0 and T tokens
// from t0, added to acc. Whole groups get their own instantiation: no masks, no tail.
template <class Dec, int R, int T, bool kWhole>
inline void group(const PackedMatrix& w, const Q8Activations& xq, const uint8_t* const* rows, int64_t r0, int64_t t0,
                  int64_t g0, int n, __m512 (&acc)[R][T]) {
  constexpr bool kPacked = Dec::kFormat == QFormat::Packed;
  const int64_t nb = xq.blocks();
  const __mmask16 k = kWhole ? 0xFFFF : static_cast<__mmask16>((1u << n) - 1);
  const int steps = kWhole ? 4 : n / 4;  // whole runs of 4 blocks; the rest (last group only) in scalar
  // Integer sums: steps 0 and 1, then 2 and 3, interleaved by unpacking; lane 4k + j then holds
  // block 4j + k, put back in order by `transpose`.
  V I[R][T];
  {
    V half[2][R][T];
#pragma GCC unroll 2
    for (int hh = 0; hh < 2; ++hh) {
      V P[2][R][T];
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        const int s = 2 * hh + h;
        if (kWhole || s < steps) {
          const int64_t b = g0 + 4 * s;
          V X[T][Dec::kParts];
          for (int t = 0; t < T; ++t) Dec::load_x(xq.q.data() + ((t0 + t) * nb + b) * 32, X[t]);
#pragma GCC unroll 4
          for (int i = 0; i < R; ++i) {
            V W[Dec::kParts];
            Dec::load_w(rows[i], b, W);
            for (int t = 0; t < T; ++t) P[h][i][t] = Dec::dot(W, X[t]);
          }
        } else {
          for (int i = 0; i < R; ++i)
            for (int t = 0; t < T; ++t) P[h][i][t] = _mm512_setzero_si512();
        }
      }
      for (int i = 0; i < R; ++i)
        for (int t = 0; t < T; ++t)
          half[hh][i][t] = _mm512_add_epi32(_mm512_unpacklo_epi32(P[0][i][t], P[1][i][t]),
                                            _mm512_unpackhi_epi32(P[0][i][t], P[1][i][t]));
    }
    const V transpose = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    for (int i = 0; i < R; ++i)
      for (int t = 0; t < T; ++t)
        I[i][t] = _mm512_permutexvar_epi32(
            transpose, _mm512_add_epi32(_mm512_unpacklo_epi64(half[0][i][t], half[1][i][t]),
                                        _mm512_unpackhi_epi64(half[0][i][t], half[1][i][t])));
  }

  __m512 dx[T];
  V sx[T], zx[T];  // zx: the fixed zero of ggml codes times Σ q_x
  for (int t = 0; t < T; ++t) {
    dx[t] = _mm512_maskz_loadu_ps(k, xq.d.data() + (t0 + t) * nb + g0);
    sx[t] = _mm512_maskz_loadu_epi32(k, xq.sum.data() + (t0 + t) * nb + g0);
    if constexpr (!kPacked) zx[t] = _mm512_mullo_epi32(_mm512_set1_epi32(Dec::kZero), sx[t]);
  }
  V spread = _mm512_setzero_si512();
  if constexpr (kPacked)
    if (w.group != 32) spread = group_spread(w, g0);
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i) {
    const Coefficients c = coefficients<Dec, kWhole>(w, r0 + i, g0, k, spread);
    for (int t = 0; t < T; ++t) {
      V it = I[i][t];
      if constexpr (kPacked)
        it = _mm512_sub_epi32(it, _mm512_mullo_epi32(c.z, sx[t]));
      else if constexpr (Dec::kZero != 0)
        it = _mm512_sub_epi32(it, zx[t]);
      if (!kWhole && 4 * steps < n) {
        alignas(64) int32_t rest[kLanes];
        const int64_t xb = (t0 + t) * nb + g0;
        for (int j = 4 * steps; j < n; ++j)
          rest[j] = block_int(w, r0 + i, g0 + j, xq.q.data() + (xb + j) * 32, xq.sum[xb + j]);
        it = _mm512_mask_load_epi32(it, static_cast<__mmask16>(k & ~((1u << (4 * steps)) - 1)), rest);
      }
      // Lanes outside k keep their partial sums untouched, as the definition leaves them.
      acc[i][t] = _mm512_mask3_fmadd_ps(_mm512_mul_ps(c.s, dx[t]), _mm512_cvtepi32_ps(it), acc[i][t], k);
      if constexpr (Dec::kFormat == QFormat::Q4_1)
        acc[i][t] = _mm512_mask3_fmadd_ps(_mm512_mul_ps(c.m, dx[t]), _mm512_cvtepi32_ps(sx[t]), acc[i][t], k);
    }
  }
}

// R rows from r0, T tokens from t0. Every (row, token) follows the definition's order whatever R
// and T are, so the blocking never changes a result.
template <class Dec, int R, int T>
void tile(const PackedMatrix& w, const Q8Activations& xq, int64_t r0, int64_t t0, float* y) {
  const int64_t nb = xq.blocks();
  const uint8_t* rows[R];
  for (int i = 0; i < R; ++i) rows[i] = w.row(r0 + i);
  __m512 acc[R][T];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < T; ++t) acc[i][t] = _mm512_setzero_ps();
  int64_t g0 = 0;
  for (; g0 + kLanes <= nb; g0 += kLanes) group<Dec, R, T, true>(w, xq, rows, r0, t0, g0, kLanes, acc);
  if (g0 < nb) group<Dec, R, T, false>(w, xq, rows, r0, t0, g0, static_cast<int>(nb - g0), acc);
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < T; ++t) {
      alignas(64) float lanes[kLanes];
      _mm512_store_ps(lanes, acc[i][t]);
      y[(t0 + t) * w.rows + r0 + i] = reduce_lanes(lanes);
    }
}

// One token at a time (packed_matmul_q8act gives more than one to gemm_avx512), 4 rows a vector.
template <class Dec>
void run(const PackedMatrix& w, const Q8Activations& xq, int64_t r0, int64_t r1, float* y) {
  for (int64_t t = 0; t < xq.tokens; ++t) {
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) tile<Dec, 4, 1>(w, xq, r, t, y);
    for (; r < r1; ++r) tile<Dec, 1, 1>(w, xq, r, t, y);
  }
}

// reduce_lanes (qgemv_q8act_block.h) of 4 outputs' partial sums at once, each step of the tree
// one addition for all of them, partial sum i the first operand of acc[i] += acc[i + h].
__m128 reduce_lanes4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  // h = 8: the 256-bit halves of two outputs side by side.
  const __m512 h01 = _mm512_add_ps(_mm512_shuffle_f32x4(a0, a1, 0x44), _mm512_shuffle_f32x4(a0, a1, 0xEE));
  const __m512 h23 = _mm512_add_ps(_mm512_shuffle_f32x4(a2, a3, 0x44), _mm512_shuffle_f32x4(a2, a3, 0xEE));
  // h = 4: then 128-bit lane j holds output j.
  const __m512 h4 = _mm512_add_ps(_mm512_shuffle_f32x4(h01, h23, 0x88), _mm512_shuffle_f32x4(h01, h23, 0xDD));
  const __m512 h2 = _mm512_add_ps(h4, _mm512_permute_ps(h4, 0xEE));
  const __m512 h1 = _mm512_add_ps(h2, _mm512_permute_ps(h2, 0x55));
  const __m512i firsts = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_castps512_ps128(_mm512_permutexvar_ps(firsts, h1));
}

// The same for 4 rows' accumulators of a pack of 4 tokens (token p's partial sums 0..3 in 128-bit
// lane p, the rest +0): the tree's last two steps, then out[p] = token p's 4 rows.
void reduce_packs4(__m512 a0, __m512 a1, __m512 a2, __m512 a3, __m128 out[4]) {
  const __m512i firsts = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  __m128 row[4];
  const __m512 a[4] = {a0, a1, a2, a3};
  for (int i = 0; i < 4; ++i) {
    const __m512 h2 = _mm512_add_ps(a[i], _mm512_permute_ps(a[i], 0xEE));
    const __m512 h1 = _mm512_add_ps(h2, _mm512_permute_ps(h2, 0x55));
    row[i] = _mm512_castps512_ps128(_mm512_permutexvar_ps(firsts, h1));  // row i of tokens 0..3
  }
  _MM_TRANSPOSE4_PS(row[0], row[1], row[2], row[3]);
  for (int p = 0; p < 4; ++p) out[p] = row[p];
}

// The many-token register block, R rows × T packs of tokens (see TokenTiles): each of a tile's 8
// steps loads R weight and T activation vectors for R·T vpdpbusd; 4 × 4 keeps 16 integer
// vectors and 8 operands in the 32 registers.
struct Zmm {
  static constexpr int kR = 4, kT = 4;
  static constexpr bool kSigned8 = false;

  template <class K, int R, int T>
  static void tile(const RowTiles& wt, int64_t i0, const TokenTiles& xt, int64_t t0, float* y, int64_t ld) {
    __m512 acc[R][T];
    for (int i = 0; i < R; ++i)
      for (int t = 0; t < T; ++t) acc[i][t] = _mm512_setzero_ps();
    for (int64_t g = 0; g < xt.tiles; ++g) {
      const Operands op = operands<kR>(wt, i0, xt, t0, g);
      // The integers start at −zero·Σ q_x (exact in int32: |Σ q_x| ≤ 32·127).
      V I[R][T];
      for (int t = 0; t < T; ++t) {
        const V sx = _mm512_loadu_si512(op.sum + 16 * t);
        if constexpr (K::kGroupZero) {
          const V neg = _mm512_sub_epi32(_mm512_setzero_si512(), sx);
          for (int i = 0; i < R; ++i) I[i][t] = _mm512_mullo_epi32(_mm512_loadu_si512(op.zero + 16 * i), neg);
        } else {
          const V start = K::kZero ? _mm512_mullo_epi32(_mm512_set1_epi32(-K::kZero), sx) : _mm512_setzero_si512();
          for (int i = 0; i < R; ++i) I[i][t] = start;
        }
      }
#pragma GCC unroll 8
      for (int k = 0; k < kTileVectors; ++k) {
        V W[R], X[T];
        for (int i = 0; i < R; ++i) W[i] = _mm512_load_si512(op.w[k * kR + i].b);
        for (int t = 0; t < T; ++t) X[t] = _mm512_load_si512(op.x[k * kTokenGroup + t].b);
        for (int i = 0; i < R; ++i)
          for (int t = 0; t < T; ++t) I[i][t] = _mm512_dpbusd_epi32(I[i][t], W[i], X[t]);
      }
      for (int i = 0; i < R; ++i) {
        const __m512 s = _mm512_loadu_ps(op.s + 16 * i);
        for (int t = 0; t < T; ++t) {
          const __m512 dx = _mm512_loadu_ps(op.d + 16 * t);
          acc[i][t] = _mm512_fmadd_ps(_mm512_mul_ps(s, dx), _mm512_cvtepi32_ps(I[i][t]), acc[i][t]);
          if constexpr (K::kMin) {
            const __m512 sx = _mm512_cvtepi32_ps(_mm512_loadu_si512(op.sum + 16 * t));
            acc[i][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_loadu_ps(op.m + 16 * i), dx), sx, acc[i][t]);
          }
        }
      }
    }
    for (int t = 0; t < T; ++t) {
      if constexpr (R == 4) {  // rows i0..i0+3 of a token lie side by side in y
        if (xt.pack == 1) {
          _mm_storeu_ps(y + (t0 + t) * ld, reduce_lanes4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]));
          continue;
        }
        if (xt.pack == 4) {
          __m128 out[4];
          reduce_packs4(acc[0][t], acc[1][t], acc[2][t], acc[3][t], out);
          const int64_t first = (t0 + t) * 4, n = std::min<int64_t>(4, xt.tokens - first);
          for (int64_t p = 0; p < n; ++p) _mm_storeu_ps(y + (first + p) * ld, out[p]);
          continue;
        }
      }
      for (int i = 0; i < R; ++i)
        store_pack(_mm512_castps512_ps256(acc[i][t]),
                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[i][t]), 1)), xt, t0 + t, y + i, ld);
    }
  }
};

}  // namespace

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
void matmul_avx512(const PackedMatrix& w, const Q8Activations& xq, int64_t r0, int64_t r1, float* y) {
  if (!qgemv::with_decoder<Decode, 2, 4, 8>(w, [&](auto dec) { run<decltype(dec)>(w, xq, r0, r1, y); }))
    matmul_scalar(w, xq, r0, r1, y);  // layouts packed_matmul_q8act_level sends to the scalar path
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
void gemm_avx512(const PackedMatrix& w, const TokenTiles& xt, int64_t r0, int64_t r1, float* y) {
  gemm_rows<Zmm>(w, xt, r0, r1, y);
}

}  // namespace tquant::q8act

#pragma GCC pop_options
