#pragma once
// Products of a packed low-bit weight matrix W [out, in] (qblock_formats.h) with float32
// activations: y[t, r] = Σ_c W[r, c] · x[t, c] (+ bias[r]) for a vector (tokens = 1, GEMV) or a
// [tokens, in] matrix. Blocks are decoded in registers; the matrix is never expanded.
//
// Every weight is the value the dequantizers produce, bit for bit, so the result equals
// dequantize-then-sgemm up to the order of the float summation. Each output element's order
// is fixed by the SIMD level and the shape alone: rows are split over threads, never the sum,
// so results do not depend on the thread count.
#include <cstdint>

#include "kernels/cpu_features.h"
#include "kernels/qblock_formats.h"

namespace tquant {

// x: [tokens, w.cols] row-major; y: [tokens, w.rows]; bias: [w.rows] or null.
void packed_matmul(const PackedMatrix& w, const float* x, int64_t tokens, const float* bias, float* y);

// The level packed_matmul uses for w at `level`: the level itself, or a lower one for layouts the
// SIMD kernels do not decode (Packed codes of 5..7 bits, or several groups per row
// of a size that is not a multiple of 32).
SimdLevel packed_matmul_level(const PackedMatrix& w, SimdLevel level);

namespace qgemv {
// One level each, for rows [r0, r1) of y and every token; no threading, no bias. The SIMD ones
// need packed_matmul_level(w, their level) == their level.
void matmul_scalar(const PackedMatrix& w, const float* x, int64_t tokens, int64_t r0, int64_t r1, float* y);
void matmul_avx2(const PackedMatrix& w, const float* x, int64_t tokens, int64_t r0, int64_t r1, float* y);
void matmul_avx512(const PackedMatrix& w, const float* x, int64_t tokens, int64_t r0, int64_t r1, float* y);
}  // namespace qgemv

}  // namespace tquant
