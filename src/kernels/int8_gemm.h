#pragma once
// W8A8: int8 weights × 8-bit activation codes → int32, rescaled to float32.
//
//   y[t, r] = s_w[r] · Σ_g s(t, g) · (Σ_{k∈g} a[t, k] · w[r, k] − o(t, g) · Σ_{k∈g} w[r, k])
//
// a are unsigned codes (0..255) with x = s · (a − o): asymmetric activations give o = z, signed
// symmetric codes are shifted by 128 (o = 128), which is the u8 form vpdpbusd needs; the row sums
// Σ w compensate the offset. Groups g are activation-scale groups: one for per-tensor and
// per-token scales, K for per-embedding-group (PEG) scales, whose columns the weight stores
// gathered group by group (the PEG permutation folded into the weight), each group padded to a
// multiple of 16 columns with zero weights, so every group is a contiguous run of the inner loop.
// The integer sums are exact; the float epilogue is one fused multiply-add per group in group
// order, then the multiply by s_w, at every SIMD level: all levels give bit-identical results,
// whatever the thread count.
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace tquant {

struct Int8Weight {
  static constexpr int64_t kGroupAlign = 16;  // columns; VNNI steps 4, AVX2 steps 16
  static constexpr int64_t kPanelRows = 16;
  static constexpr int64_t kMaxGroupWidth = 32768;  // keeps |Σ a·w| and |o·Σ w| within int32

  int64_t n = 0, k = 0;   // logical shape [n = out, k = in]
  int64_t kp = 0;         // stored width: the groups back to back, each padded to kGroupAlign
  int64_t np = 0;         // n rounded up to kPanelRows
  std::vector<int64_t> group_begin;  // groups + 1 offsets into the stored width
  std::vector<int32_t> column;       // [kp]: the input column stored there, −1 for padding
  std::vector<int8_t> rows;          // [n · kp] row-major (scalar and AVX2 kernels)
  std::vector<int8_t> panels;        // [np/16][kp/4][16][4]: vpdpbusd's operand layout
  std::vector<int32_t> row_sum;      // [groups · np] Σ w over each group
  std::vector<float> scale;          // [np] s_w per row, 0 past n

  int64_t groups() const { return static_cast<int64_t>(group_begin.size()) - 1; }
};

// codes: [n · k] int8 weight codes; row_scale: [n]; channel_group: [k] column -> activation
// group 0..G-1 (every group non-empty), or empty for one group. Errors name `where`.
Int8Weight make_int8_weight(std::span<const int8_t> codes, int64_t n, int64_t k, std::span<const float> row_scale,
                            std::span<const int32_t> channel_group, std::string_view where);

struct Int8Activations {
  int64_t m = 0, kp = 0;        // m tokens, in the weight's stored column order
  std::vector<uint8_t> codes;   // [m · kp], padding columns 0
  bool per_row = false;         // scale and offset per token (per-token quantization) or shared
  std::vector<float> scale;     // [(per_row ? m : 1) · groups]
  std::vector<int32_t> offset;  // same shape; x = scale · (code − offset)
};

// y: [a.m, w.n] row-major. Shapes and sizes are checked.
void int8_gemm(const Int8Activations& a, const Int8Weight& w, float* y);

namespace int8 {
// One level each: rows [r0, r1) of every token (r0 a multiple of 32), no threading.
void gemm_scalar(const Int8Activations& a, const Int8Weight& w, int64_t r0, int64_t r1, float* y);
void gemm_avx2(const Int8Activations& a, const Int8Weight& w, int64_t r0, int64_t r1, float* y);
void gemm_avx512(const Int8Activations& a, const Int8Weight& w, int64_t r0, int64_t r1, float* y);
}  // namespace int8

}  // namespace tquant
