#pragma once
// Packed low-bit weights times int8-quantized activations, the way llama.cpp multiplies Q4_0
// (its vec_dot_type Q8_0): the activations are rounded to int8 in blocks of 32, and each block of
// 32 weights contributes a float coefficient times an exact integer dot product. Opt-in
// (`tquant eval --q8-activations`): it changes results slightly, unlike packed_matmul
// (qgemv.h), which multiplies the float activations exactly.
//
// Activation blocks (quantize_activations_q8): for the 32 values x of a block,
//   d = max|x| / 127 in float32 (llama.cpp rounds it to fp16, a relative error up to 2^-11;
//   nothing here stores it), q = round-half-even(x / d) clamped to ±127, sum = Σ q.
// The element of largest magnitude becomes ±127, an all-zero block d = 0 and q = 0; a block
// holding Inf or NaN gets d = NaN (q = 0), so the token's outputs are NaN as they would be in
// float.
//
// The product (the definition; kernels/qgemv_q8act_block.h has it in code). For row r, token t,
// block b (columns 32b .. 32b+31), with the weight block's integer codes q_w:
//   Q4_0          i = Σ (q_w − 8)·q_x                         y += (d_w·d_x) · i
//   Q8_0          i = Σ q_w·q_x                               y += (d_w·d_x) · i
//   Q4_1          i = Σ q_w·q_x;  w = d_w·q_w + m             y += (d_w·d_x) · i + (m·d_x) · Σ q_x
//   tquant codes  i = Σ (q_w − z)·q_x; s, z of the block's group  y += (s·d_x) · i
// The integers are exact (any order). The float sum is fixed: block b goes to partial sum
// b mod 16 (each `+=` one fused multiply-add, after the product of the two scales), and the 16
// partial sums are added as a tree (8 pairs, 4, 2, 1). Every SIMD level computes exactly this,
// so all levels agree bit for bit; rows are split over threads, never a sum, so results do not
// depend on the thread count either.
#include <cstdint>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/qblock_formats.h"

namespace tquant {

struct Q8Activations {
  static constexpr int64_t kBlock = 32;
  int64_t tokens = 0, cols = 0;  // cols a multiple of kBlock
  std::vector<int8_t> q;         // [tokens, cols], each in -127..127
  std::vector<float> d;          // [tokens, blocks()]: x ≈ d · q
  std::vector<int32_t> sum;      // [tokens, blocks()]: Σ q of the block
  int64_t blocks() const { return cols / kBlock; }
};

// x: [tokens, cols] row-major; cols must be a positive multiple of 32.
Q8Activations quantize_activations_q8(const float* x, int64_t tokens, int64_t cols);
// The same into `into`, reusing its storage: callers that round many inputs avoid fresh pages
// each time.
void quantize_activations_q8(const float* x, int64_t tokens, int64_t cols, Q8Activations& into);

// Whether w can take int8 activations: ggml blocks always; tquant codes of any width when every
// group is a whole number of activation blocks (group % 32 == 0, which includes one group per row
// of a multiple of 32 columns).
bool packed_q8act_supported(const PackedMatrix& w);

// y[t, r] = Σ_c W[r, c] · x[t, c] (+ bias[r]) as defined above; y: [xq.tokens, w.rows]. w must be
// supported and xq.cols == w.cols (errors otherwise).
void packed_matmul_q8act(const PackedMatrix& w, const Q8Activations& xq, const float* bias, float* y);
// Quantizes x ([tokens, w.cols]) and multiplies.
void packed_matmul_q8act(const PackedMatrix& w, const float* x, int64_t tokens, const float* bias, float* y);

// The level packed_matmul_q8act uses for w at `level`: the level itself, or scalar for tquant
// codes the SIMD kernels do not decode (widths other than 2, 4 and 8 bits).
SimdLevel packed_matmul_q8act_level(const PackedMatrix& w, SimdLevel level);

namespace q8act {
// packed_matmul_q8act at a given level (one the CPU has, with packed_matmul_q8act_level(w, level)
// == level or Scalar). avx_vnni picks the AVX2 level's many-token kernel: vpdpbusd through
// AVX-VNNI (the CPU must have it) or vpmaddubsw; packed_matmul_q8act passes cpu_has_avx_vnni(),
// and tests both on a CPU that has it.
void matmul_at(const PackedMatrix& w, const Q8Activations& xq, const float* bias, float* y, SimdLevel level,
               bool avx_vnni);

// One level each, for rows [r0, r1) of y and every token of xq, one token at a time (GEMV); no
// threading, no bias. The SIMD ones need packed_matmul_q8act_level(w, their level) == their level.
void matmul_scalar(const PackedMatrix& w, const Q8Activations& xq, int64_t r0, int64_t r1, float* y);
void matmul_avx2(const PackedMatrix& w, const Q8Activations& xq, int64_t r0, int64_t r1, float* y);
void matmul_avx512(const PackedMatrix& w, const Q8Activations& xq, int64_t r0, int64_t r1, float* y);

// Many tokens at once (GEMM) from the activations in tiles (kernels/qgemv_q8act_tiles.h): rows
// [r0, r1) of y, every token; no threading, no bias; the same condition on the level.
struct TokenTiles;
void gemm_avx2(const PackedMatrix& w, const TokenTiles& xt, int64_t r0, int64_t r1, float* y);
void gemm_avxvnni(const PackedMatrix& w, const TokenTiles& xt, int64_t r0, int64_t r1, float* y);
void gemm_avx512(const PackedMatrix& w, const TokenTiles& xt, int64_t r0, int64_t r1, float* y);
}  // namespace q8act

}  // namespace tquant
