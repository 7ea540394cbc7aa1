// AVX2 kernel for packed_matmul_q8act: one weight block (32 codes in a ymm) meets its activations
// through vpmaddubsw (unsigned × signed bytes, adjacent pairs summed to int16) and vpmaddwd
// (pairs to int32); a horizontal-add tree turns 8 blocks' vectors into one vector of 8 block
// sums, in block order, and two such halves are the definition's 16 partial float sums.
// vpmaddubsw saturates at ±32767, so codes stay below 128 in magnitude: 4-bit and 2-bit codes
// as they are, 8-bit ones through the sign trick |w| · sign(x, w) (Q8_0 as is, tquant codes
// shifted by −128). Compiled for AVX2 + FMA + F16C through the target pragma below.
//
// Many tokens: the shared tile driver (qgemv_q8act_gemm.h) with the 256-bit register block of
// qgemv_q8act_gemm_ymm.h, its dot products through the same vpmaddubsw; CPUs with AVX-VNNI take
// qgemv_q8act_avxvnni.cc instead.
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
#pragma GCC target("avx2,fma,f16c")

#include "kernels/qgemv_q8act_gemm.h"
#include "kernels/qgemv_q8act_gemm_ymm.h"

namespace tquant::q8act {
namespace {

using V = __m256i;

V load32(const void* p) { return _mm256_loadu_si256(static_cast<const V*>(p)); }
__m128i load16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// Products of unsigned codes (< 128) and signed activations, summed per 4 bytes.
V dot_u8(V w, V x) { return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)); }
// The same for signed codes (-128..127): |w| fits the unsigned operand, the sign moves to x.
V dot_s8(V w, V x) { return dot_u8(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w)); }

// 16 code bytes → [low nibbles | high nibbles].
V nibbles(__m128i v) {
  const V both = _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// One block each: load_x arranges its 32 activations to match load_w's codes, dot gives 8
// partial sums. kZero: what a ggml block's integer still has to lose per unit of Σ q_x (Q4_0's 8);
// tquant codes lose their zero point minus kZeroShift (the −128 of 8-bit codes).
template <QFormat F, int Bits>
struct Decode;

template <QFormat F, int BlockBytes, int Offset, int Zero>
struct GgmlNibbles {
  static constexpr QFormat kFormat = F;
  static constexpr int kBlockBytes = BlockBytes, kZero = Zero;
  static V load_x(const int8_t* x) { return load32(x); }
  static V load_w(const uint8_t* row, int64_t b) { return nibbles(load16(row + b * BlockBytes + Offset)); }
  static V dot(V w, V x) { return dot_u8(w, x); }
};
template <>
struct Decode<QFormat::Q4_0, 4> : GgmlNibbles<QFormat::Q4_0, 18, 2, 8> {};
template <>
struct Decode<QFormat::Q4_1, 4> : GgmlNibbles<QFormat::Q4_1, 20, 4, 0> {};

template <>
struct Decode<QFormat::Q8_0, 8> {
  static constexpr QFormat kFormat = QFormat::Q8_0;
  static constexpr int kBlockBytes = 34, kZero = 0;
  static V load_x(const int8_t* x) { return load32(x); }
  static V load_w(const uint8_t* row, int64_t b) { return load32(row + b * 34 + 2); }
  static V dot(V w, V x) { return dot_s8(w, x); }
};

// tquant 4-bit: byte k holds codes 2k and 2k + 1, so the activations go as [even | odd].
template <>
struct Decode<QFormat::Packed, 4> {
  static constexpr QFormat kFormat = QFormat::Packed;
  static constexpr int kZeroShift = 0;
  static V load_x(const int8_t* x) {
    const V split = _mm256_broadcastsi128_si256(_mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
    return _mm256_permute4x64_epi64(_mm256_shuffle_epi8(load32(x), split), 0xD8);
  }
  static V load_w(const uint8_t* row, int64_t b) { return nibbles(load16(row + b * 16)); }
  static V dot(V w, V x) { return dot_u8(w, x); }
};

// tquant 2-bit: byte k holds codes 4k + j at bits 2j; 64-bit part j of the vector gets codes
// 4k + j, and the activations are grouped the same way.
template <>
struct Decode<QFormat::Packed, 2> {
  static constexpr QFormat kFormat = QFormat::Packed;
  static constexpr int kZeroShift = 0;
  static V load_x(const int8_t* x) {
    const V by_j = _mm256_broadcastsi128_si256(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    return _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(load32(x), by_j), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  }
  static V load_w(const uint8_t* row, int64_t b) {
    const V v = _mm256_set1_epi64x(static_cast<long long>(_mm_cvtsi128_si64(_mm_loadl_epi64(
        reinterpret_cast<const __m128i*>(row + b * 8)))));
    return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 2, 4, 6)), _mm256_set1_epi8(3));
  }
  static V dot(V w, V x) { return dot_u8(w, x); }
};

// tquant 8-bit: codes − 128 as signed bytes (flip the top bit); the zero point makes up for it.
template <>
struct Decode<QFormat::Packed, 8> {
  static constexpr QFormat kFormat = QFormat::Packed;
  static constexpr int kZeroShift = 128;
  static V load_x(const int8_t* x) { return load32(x); }
  static V load_w(const uint8_t* row, int64_t b) {
    return _mm256_xor_si256(load32(row + b * 32), _mm256_set1_epi8(static_cast<char>(0x80)));
  }
  static V dot(V w, V x) { return dot_s8(w, x); }
};

// 8 halves in the low 16 bits (shift 0) or high 16 bits (shift 2) of 8 dwords → floats.
__m256 halves(V raw, int shift) {
  const V pick = shift == 0 ? _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1, 0, 1, 4, 5, 8,
                                               9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1)
                            : _mm256_setr_epi8(2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, 2, 3, 6, 7,
                                               10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1);
  const V packed = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(raw, pick), 0xD8);
  return _mm256_cvtph_ps(_mm256_castsi256_si128(packed));
}

struct Coefficients {
  __m256 s, m;
  V z;  // tquant codes: zero point − kZeroShift
};

// tquant codes: which of the groups loaded from b0's each of the 8 blocks b0.. falls in, when a
// group spans several blocks; the same for every row.
V group_spread(const PackedMatrix& w, int64_t b0) {
  const int64_t per = w.group / 32;
  alignas(32) int32_t spread[8];
  for (int j = 0; j < 8; ++j) spread[j] = static_cast<int32_t>((b0 + j) / per - b0 / per);
  return _mm256_load_si256(reinterpret_cast<const V*>(spread));
}

// The 8 blocks from b0 whose lanes are set in `mask` (the others are not read).
template <class Dec>
Coefficients coefficients(const PackedMatrix& w, int64_t r, int64_t b0, V mask, V spread) {
  Coefficients c{_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_si256()};
  if constexpr (Dec::kFormat == QFormat::Packed) {
    // The groups of blocks b0..b0+7 are consecutive: load them, then spread them over the blocks.
    const int64_t first = b0 / (w.group / 32), groups = w.groups_per_row();
    const V have = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<int64_t>(8, groups - first))),
                                      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 s = _mm256_maskload_ps(w.scale.data() + r * groups + first, have);
    __m256 z = _mm256_maskload_ps(w.zero.data() + r * groups + first, have);
    if (w.group != 32) {
      s = _mm256_permutevar8x32_ps(s, spread);
      z = _mm256_permutevar8x32_ps(z, spread);
    }
    c.s = s;
    c.z = _mm256_sub_epi32(_mm256_cvttps_epi32(z), _mm256_set1_epi32(Dec::kZeroShift));
  } else {
    // d (and Q4_1's m) are the first 4 bytes of each block.
    const V offsets = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(Dec::kBlockBytes));
    const V raw = _mm256_mask_i32gather_epi32(_mm256_setzero_si256(),
                                              reinterpret_cast<const int*>(w.row(r) + b0 * Dec::kBlockBytes), offsets,
                                              mask, 1);
    c.s = halves(raw, 0);
    if constexpr (Dec::kFormat == QFormat::Q4_1) c.m = halves(raw, 2);
  }
  return c;
}

// R rows from r0, one token; the definition's order for every row.
template <class Dec, int R>
void tile(const PackedMatrix& w, const Q8Activations& xq, int64_t r0, int64_t t, float* y) {
  constexpr bool kPacked = Dec::kFormat == QFormat::Packed;
  const int64_t nb = xq.blocks();
  const int8_t* x = xq.q.data() + t * xq.cols;
  const uint8_t* rows[R];
  for (int i = 0; i < R; ++i) rows[i] = w.row(r0 + i);
  __m256 acc[R][2];
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();

  for (int64_t b0 = 0; b0 < nb; b0 += 8) {
    const int n = static_cast<int>(std::min<int64_t>(8, nb - b0));
    const int lane_half = static_cast<int>((b0 / 8) % 2);  // partial sums 0..7 or 8..15
    // The 8 blocks' sums: pairs, then quads (within 128-bit lanes), then the lanes combined.
    V quad[2][R];
#pragma GCC unroll 2
    for (int q = 0; q < 2; ++q) {
      V pair[2][R];
#pragma GCC unroll 2
      for (int p = 0; p < 2; ++p) {
        V blk[2][R];
#pragma GCC unroll 2
        for (int e = 0; e < 2; ++e) {
          const int j = 4 * q + 2 * p + e;
          if (j < n) {
            const V xv = Dec::load_x(x + (b0 + j) * 32);
            for (int i = 0; i < R; ++i) blk[e][i] = Dec::dot(Dec::load_w(rows[i], b0 + j), xv);
          } else {
            for (int i = 0; i < R; ++i) blk[e][i] = _mm256_setzero_si256();
          }
        }
        for (int i = 0; i < R; ++i) pair[p][i] = _mm256_hadd_epi32(blk[0][i], blk[1][i]);
      }
      for (int i = 0; i < R; ++i) quad[q][i] = _mm256_hadd_epi32(pair[0][i], pair[1][i]);
    }
    const V iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const V mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), iota);
    const __m256 dx = _mm256_maskload_ps(xq.d.data() + t * nb + b0, mask);
    const V sx = _mm256_maskload_epi32(xq.sum.data() + t * nb + b0, mask);
    V spread = _mm256_setzero_si256();
    if constexpr (kPacked)
      if (w.group != 32) spread = group_spread(w, b0);
    for (int i = 0; i < R; ++i) {
      V sums = _mm256_add_epi32(_mm256_permute2x128_si256(quad[0][i], quad[1][i], 0x20),
                                _mm256_permute2x128_si256(quad[0][i], quad[1][i], 0x31));
      const Coefficients c = coefficients<Dec>(w, r0 + i, b0, mask, spread);
      if constexpr (kPacked)
        sums = _mm256_sub_epi32(sums, _mm256_mullo_epi32(c.z, sx));
      else if constexpr (Dec::kZero != 0)
        sums = _mm256_sub_epi32(sums, _mm256_mullo_epi32(_mm256_set1_epi32(Dec::kZero), sx));
      __m256& a = acc[i][lane_half];
      __m256 next = _mm256_fmadd_ps(_mm256_mul_ps(c.s, dx), _mm256_cvtepi32_ps(sums), a);
      if constexpr (Dec::kFormat == QFormat::Q4_1)
        next = _mm256_fmadd_ps(_mm256_mul_ps(c.m, dx), _mm256_cvtepi32_ps(sx), next);
      a = n == 8 ? next : _mm256_blendv_ps(a, next, _mm256_castsi256_ps(mask));
    }
  }
  for (int i = 0; i < R; ++i) {
    alignas(32) float lanes[kLanes];
    _mm256_store_ps(lanes, acc[i][0]);
    _mm256_store_ps(lanes + 8, acc[i][1]);
    y[t * w.rows + r0 + i] = reduce_lanes(lanes);
  }
}

// Two rows at a time: their accumulators and horizontal-add trees fill the 16 ymm registers.
template <class Dec>
void run(const PackedMatrix& w, const Q8Activations& xq, int64_t r0, int64_t r1, float* y) {
  for (int64_t t = 0; t < xq.tokens; ++t) {
    int64_t r = r0;
    for (; r + 2 <= r1; r += 2) tile<Dec, 2>(w, xq, r, t, y);
    if (r < r1) tile<Dec, 1>(w, xq, r, t, y);
  }
}

// vpmaddubsw's products for the many-token block: 8-bit codes come as signed bytes.
struct Maddubs {
  static constexpr int kR = 1, kT = 4;  // measured best: 4 integer vectors, 5 operands, the temporaries
  static constexpr bool kSigned8 = true;
  template <bool kSignedCodes>
  static V dot(V acc, V w, V x) {
    return _mm256_add_epi32(acc, kSignedCodes ? dot_s8(w, x) : dot_u8(w, x));
  }
};

}  // namespace

__attribute__((target("avx2,fma,f16c")))
void matmul_avx2(const PackedMatrix& w, const Q8Activations& xq, int64_t r0, int64_t r1, float* y) {
  if (!qgemv::with_decoder<Decode, 2, 4, 8>(w, [&](auto dec) { run<decltype(dec)>(w, xq, r0, r1, y); }))
    matmul_scalar(w, xq, r0, r1, y);  // layouts packed_matmul_q8act_level sends to the scalar path
}

__attribute__((target("avx2,fma,f16c")))
void gemm_avx2(const PackedMatrix& w, const TokenTiles& xt, int64_t r0, int64_t r1, float* y) {
  gemm_rows<Ymm<Maddubs>>(w, xt, r0, r1, y);
}

}  // namespace tquant::q8act

#pragma GCC pop_options
