#pragma once
// The SIMD files' shared many-token driver (layout in qgemv_q8act_tiles.h): a row slice's
// weights are decoded once into tiles of unsigned bytes, then every token meets them through
// the file's tile kernel, a register block of rows × tokens.
//
// Include it inside the file's target region (it uses AVX2, which every SIMD level has), after
// the standard headers and qgemv_q8act_tiles.h, which must not be compiled under a target.
// Internal linkage on purpose (see qgemv_q8act_block.h).
//
// A kernel type Micro provides kR × kT, its register block (rows × packs of tokens, see
// TokenTiles; remainders use 1 row and 2 or 1 packs); kSigned8, whether it wants 8-bit codes as
// signed bytes (vpmaddubsw's sign trick) rather than unsigned; and
//   template <class Kind, int R, int T>
//   static void tile(const RowTiles& wt, int64_t i, const TokenTiles& xt, int64_t q, float* y, int64_t ld)
// for rows i.. of wt and packs q.., writing each row's outputs with store_pack (y at row i of
// the slice; a token's outputs ld apart).
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/qgemv_dispatch.h"
#include "kernels/qgemv_q8act_block.h"
#include "kernels/qgemv_q8act_tiles.h"
#include "kernels/simd_bytes.h"

namespace tquant::q8act {
namespace {

// What a tile kernel needs to know of a layout. Every weight tile holds codes c with
// i = Σ (c − zero)·q_x = Σ c·q_x − zero·Σ q_x: kZero is a fixed zero (Q4_0's 8; Q8_0's 128 by
// which its signed codes were shifted to unsigned), kGroupZero says it is the group's zero point
// instead (tquant codes, RowTiles::zero), kMin that Q4_1's second term follows.
template <QFormat F, int Bits, bool kSigned8>
struct Kind {
  static constexpr bool kSignedCodes = kSigned8 && Bits == 8;  // only Micro::kSigned8 asks for them
  static constexpr bool kGroupZero = F == QFormat::Packed, kMin = F == QFormat::Q4_1;
  static constexpr int kZero = F == QFormat::Q4_0 ? 8 : (F == QFormat::Q8_0 && !kSigned8) ? 128 : 0;
};

// A slice's weights in tiles, and per block (16 a tile, padding zero) the float coefficients
// and, for tquant codes, the zero point the integer loses per unit of Σ q_x. Rows are
// interleaved in groups of kR (the kernel's register block), as TokenTiles interleaves tokens:
// with G = row / kR, u = row % kR,
//   codes[((G · tiles + tile) · kTileVectors + k) · kR + u]
//   s, m, zero[((G · tiles + tile) · kR + u) · kTileBlocks + j]
struct RowTiles {
  int64_t rows = 0, tiles = 0;
  std::vector<Vec64> codes;
  std::vector<float> s, m;    // d or the group's scale; Q4_1's m
  std::vector<int32_t> zero;  // tquant codes (minus 128 as signed bytes)
};

// Where tile g's operands start for kR-interleaved rows from i0 and packs from t0: row i's
// vector k is w[k · kR + i], pack t's x[k · kTokenGroup + t]; row i's 16 coefficients start at
// s + 16 i (m, zero alike), pack t's at d + 16 t (sum alike). All at fixed offsets, so the
// kernels' unrolled loads need no address of their own.
struct Operands {
  const Vec64 *w, *x;
  const float *s, *m, *d;
  const int32_t *zero, *sum;
};

template <int kR>
__attribute__((always_inline)) inline Operands operands(const RowTiles& wt, int64_t i0, const TokenTiles& xt,
                                                        int64_t t0, int64_t g) {
  const int64_t wtile = (i0 / kR) * wt.tiles + g, xtile = (t0 / kTokenGroup) * xt.tiles + g;
  const int64_t wc = (wtile * kR + i0 % kR) * kTileBlocks;
  const int64_t xc = (xtile * kTokenGroup + t0 % kTokenGroup) * kTileBlocks;
  return {wt.codes.data() + wtile * kTileVectors * kR + i0 % kR,
          xt.codes.data() + xtile * kTileVectors * kTokenGroup + t0 % kTokenGroup,
          wt.s.data() + wc,
          wt.m.empty() ? nullptr : wt.m.data() + wc,
          xt.d.data() + xc,
          wt.zero.empty() ? nullptr : wt.zero.data() + wc,
          xt.sum.data() + xc};
}

// Block b of a row as its 32 codes in element order (unsigned bytes, or kSigned8's signed ones).
template <QFormat F, int Bits, bool kSigned8>
__m256i natural_block(const uint8_t* row, int64_t b) {
  const __m256i top = _mm256_set1_epi8(static_cast<char>(0x80));
  auto load16 = [](const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); };
  if constexpr (F == QFormat::Q4_0 || F == QFormat::Q4_1) {  // elements 0..15 low nibbles, 16..31 high
    const __m128i v = load16(row + b * ggml_block_bytes(F) + (F == QFormat::Q4_0 ? 2 : 4));
    const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
  } else if constexpr (F == QFormat::Q8_0) {  // signed codes; + 128 is a flip of the top bit
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * 34 + 2));
    return kSigned8 ? v : _mm256_xor_si256(v, top);
  } else if constexpr (Bits == 8) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * 32));
    return kSigned8 ? _mm256_xor_si256(v, top) : v;
  } else if constexpr (Bits == 4) {  // byte k: codes 2k (low nibble), 2k + 1
    const __m128i v = load16(row + b * 16), low = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_and_si128(v, low), hi = _mm_and_si128(_mm_srli_epi16(v, 4), low);
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_unpacklo_epi8(lo, hi)), _mm_unpackhi_epi8(lo, hi), 1);
  } else {  // 2 bits: byte k holds codes 4k + j at bits 2j
    static_assert(Bits == 2);
    const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + b * 8)), three = _mm_set1_epi8(3);
    const __m128i c0 = _mm_and_si128(v, three), c1 = _mm_and_si128(_mm_srli_epi16(v, 2), three);
    const __m128i c2 = _mm_and_si128(_mm_srli_epi16(v, 4), three), c3 = _mm_and_si128(_mm_srli_epi16(v, 6), three);
    const __m128i c01 = _mm_unpacklo_epi8(c0, c1), c23 = _mm_unpacklo_epi8(c2, c3);  // codes 4k, 4k+1 | 4k+2, 4k+3
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_unpacklo_epi16(c01, c23)), _mm_unpackhi_epi16(c01, c23),
                                   1);
  }
}

// v[j] (32 bytes of block j) → v[k] holding 32-bit word k of every block, block j in lane j.
__attribute__((always_inline)) inline void transpose8x8(__m256i v[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int k = 0; k < 4; ++k) {
    v[k] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x20);
    v[k + 4] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x31);
  }
}

// Rows [r0, r1) of w in tiles, interleaved by kR, into wt (its storage reused: every slot a
// kernel reads is written; the rows that pad the last group of kR are not read). Each block's
// coefficients are read with its codes, from the same cache lines. Packed tokens (pack > 1, one
// tile) find the row's blocks every 16 / pack lanes.
template <QFormat F, int Bits, bool kSigned8, int kR>
void tile_rows(const PackedMatrix& w, int64_t r0, int64_t r1, int64_t tiles, int pack, RowTiles& wt) {
  const int64_t nb = w.cols / 32, slots = (r1 - r0 + kR - 1) / kR * tiles * kR;
  // tquant codes: block b's group, the same in every row (a division per block cost 15% at 4096²).
  std::vector<int32_t> group_of;
  if constexpr (F == QFormat::Packed)
    for (int64_t b = 0; b < nb; ++b) group_of.push_back(static_cast<int32_t>(b * 32 / w.group));
  const int64_t groups = w.groups_per_row();
  const int lane_mask = kTileBlocks / pack - 1;  // a token's lanes: 16, 8 or 4 (a mask, not a division)
  wt.rows = r1 - r0;
  wt.tiles = tiles;
  wt.codes.resize(static_cast<size_t>(slots * kTileVectors));
  wt.s.resize(static_cast<size_t>(slots * kTileBlocks));
  wt.m.resize(F == QFormat::Q4_1 ? wt.s.size() : 0);
  wt.zero.resize(F == QFormat::Packed ? wt.s.size() : 0);
  for (int64_t i = 0; i < wt.rows; ++i) {
    const int64_t r = r0 + i, G = i / kR, u = i % kR;
    const uint8_t* row = w.row(r);
    for (int64_t g = 0; g < tiles; ++g) {
      const int64_t lane0 = ((G * tiles + g) * kR + u) * kTileBlocks;
      for (int h = 0; h < 2; ++h) {  // blocks 8h..8h+7 of the tile: bytes 32h.. of its vectors
        __m256i v[8];
        for (int j = 0; j < 8; ++j) {
          const int64_t b = g * kTileBlocks + ((8 * h + j) & lane_mask), lane = lane0 + 8 * h + j;
          if (b >= nb) {  // padding: codes, scale (and m, zero) 0, so 0 · 0 adds nothing
            v[j] = _mm256_setzero_si256();
            wt.s[lane] = 0.f;
            if constexpr (F == QFormat::Q4_1) wt.m[lane] = 0.f;
            if constexpr (F == QFormat::Packed) wt.zero[lane] = 0;
            continue;
          }
          v[j] = natural_block<F, Bits, kSigned8>(row, b);
          if constexpr (F == QFormat::Packed) {
            const int64_t at = r * groups + group_of[b];
            wt.s[lane] = w.scale[at];
            wt.zero[lane] = static_cast<int32_t>(w.zero[at]) - (kSigned8 && Bits == 8 ? 128 : 0);
          } else {
            wt.s[lane] = simd::half_at(row + b * ggml_block_bytes(F));
            if constexpr (F == QFormat::Q4_1) wt.m[lane] = simd::half_at(row + b * 20 + 2);
          }
        }
        transpose8x8(v);
        Vec64* tile = wt.codes.data() + (G * tiles + g) * kTileVectors * kR + u;
        for (int k = 0; k < 8; ++k) _mm256_store_si256(reinterpret_cast<__m256i*>(tile[k * kR].b + 32 * h), v[k]);
      }
    }
  }
}

// reduce_lanes (qgemv_q8act_block.h) in registers: the same tree of additions, partial sum i the
// first operand of each acc[i] += acc[i + h]. Through memory, a kernel's tail cost more than its
// whole 4096-column product. reduce4 and reduce8 are the tree's last steps, all of it for an
// output whose partial sums from 4 (from 8) on are +0 (a packed token's).
inline float reduce4(__m128 v) {
  const __m128 h2 = _mm_add_ps(v, _mm_movehl_ps(v, v));
  return _mm_cvtss_f32(_mm_add_ss(h2, _mm_shuffle_ps(h2, h2, 1)));
}
inline float reduce8(__m256 v) { return reduce4(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))); }
inline float reduce_lanes(__m256 lo, __m256 hi) { return reduce8(_mm256_add_ps(lo, hi)); }

// The outputs of pack q for one row (y at the row's column): the accumulator's partial sums
// 0..7 (lo) and 8..15 (hi), one token's or xt.pack tokens' (the padding tokens not stored).
inline void store_pack(__m256 lo, __m256 hi, const TokenTiles& xt, int64_t q, float* y, int64_t ld) {
  if (xt.pack == 1) {
    y[q * ld] = reduce_lanes(lo, hi);
    return;
  }
  const int64_t t0 = q * xt.pack, n = std::min<int64_t>(xt.pack, xt.tokens - t0);
  float out[4];
  if (xt.pack == 2) {
    out[0] = reduce8(lo);
    out[1] = reduce8(hi);
  } else {
    out[0] = reduce4(_mm256_castps256_ps128(lo));
    out[1] = reduce4(_mm256_extractf128_ps(lo, 1));
    out[2] = reduce4(_mm256_castps256_ps128(hi));
    out[3] = reduce4(_mm256_extractf128_ps(hi, 1));
  }
  for (int64_t p = 0; p < n; ++p) y[(t0 + p) * ld] = out[p];
}

// The layout handed to with_decoder (qgemv_dispatch.h), which picks it for w.
template <QFormat F, int Bits>
struct Layout {
  static constexpr QFormat kFormat = F;
  static constexpr int kBits = Bits;
};

// Activations of this many bytes stay in the level-2 cache while the slice's rows go over them.
constexpr int64_t kTokenBlockBytes = 256 << 10;

// Rows [r0, r1) of y for every token; no threading, no bias.
template <class Micro>
void gemm_rows(const PackedMatrix& w, const TokenTiles& xt, int64_t r0, int64_t r1, float* y) {
  const bool known = qgemv::with_decoder<Layout, 2, 4, 8>(w, [&](auto layout) {
    using L = decltype(layout);
    using K = Kind<L::kFormat, L::kBits, Micro::kSigned8>;
    constexpr int R = Micro::kR, T = Micro::kT;
    static_assert(kTokenGroup % T == 0, "token tiles must not straddle TokenTiles' groups");
    // Kept per thread, like the caller's TokenTiles (a lambda names a thread_local rather than
    // capturing it: hence the reference).
    static thread_local RowTiles storage;
    RowTiles& wt = storage;
    tile_rows<L::kFormat, L::kBits, Micro::kSigned8, R>(w, r0, r1, xt.tiles, xt.pack, wt);
    const int64_t block = std::max<int64_t>(
        kTokenGroup, kTokenBlockBytes / (xt.tiles * kTileVectors * 64) / kTokenGroup * kTokenGroup);
    auto tokens = [&](auto rows, int64_t i, int64_t t0, int64_t t1) {
      constexpr int Rn = decltype(rows)::value;
      float* yi = y + r0 + i;
      int64_t t = t0;
      for (; t + T <= t1; t += T) Micro::template tile<K, Rn, T>(wt, i, xt, t, yi, w.rows);
      for (; t + 2 <= t1; t += 2) Micro::template tile<K, Rn, 2>(wt, i, xt, t, yi, w.rows);
      if (t < t1) Micro::template tile<K, Rn, 1>(wt, i, xt, t, yi, w.rows);
    };
    for (int64_t t0 = 0; t0 < xt.packs; t0 += block) {
      const int64_t t1 = std::min(xt.packs, t0 + block);
      int64_t i = 0;
      for (; i + R <= wt.rows; i += R) tokens(std::integral_constant<int, R>{}, i, t0, t1);
      for (; i < wt.rows; ++i) tokens(std::integral_constant<int, 1>{}, i, t0, t1);
    }
  });
  (void)known;  // packed_matmul_q8act_level sends the layouts without a decoder to the scalar kernel
}

}  // namespace
}  // namespace tquant::q8act
