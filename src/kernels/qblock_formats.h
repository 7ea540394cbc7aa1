#pragma once
// Packed low-bit weight matrices [rows = out, cols = in] that the kernels multiply without ever
// expanding the whole matrix to float32. Two families share one type:
//   * ggml blocks (Q4_0, Q4_1, Q8_0; layouts in export/gguf_format.h): 32 weights per block,
//     fp16 d (and m), rows stored block after block;
//   * tquant's own checkpoint format (wquant/packing.h): each row a little-endian bit stream of
//     2..8-bit codes, one float scale and integral zero point per row and group.
// weight(r, c) is the value every kernel multiplies by, computed exactly as the dequantizers
// compute it (gguf dequantize_row, wq::QuantizedWeight::dequantize), so a product with these
// weights differs from dequantize-then-sgemm only in the order of the float summation.
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace tquant {

enum class QFormat { Q4_0, Q4_1, Q8_0, Packed };
const char* qformat_name(QFormat f);  // "q4_0", "q4_1", "q8_0", "packed"

struct PackedMatrix {
  QFormat format = QFormat::Packed;
  int64_t rows = 0, cols = 0;
  int bits = 0;         // 4 or 8 for ggml blocks; 2..8 for Packed
  int64_t group = 0;    // columns sharing one scale: 32 for ggml blocks; Packed: divides cols
  int64_t row_bytes = 0;
  // rows * row_bytes, then kTailPadding zero bytes so that kernels may load a few bytes past
  // a row's last code (they mask what they do not use).
  std::vector<uint8_t> data;
  std::vector<float> scale, zero;  // Packed only: [rows * groups_per_row()], zero integral

  static constexpr int64_t kBlock = 32;
  static constexpr int64_t kTailPadding = 16;

  int64_t groups_per_row() const { return cols / group; }
  const uint8_t* row(int64_t r) const { return data.data() + r * row_bytes; }
  // Bytes the weights occupy (codes and scales), for reports.
  int64_t storage_bytes() const;

  float weight(int64_t r, int64_t c) const;
  void dequantize_row(int64_t r, float* out) const;  // cols values
  Tensor dequantize() const;                         // [rows, cols]; tests and fallbacks only

  // ggml blocks as GGUF stores them: rows * (cols / 32) blocks. cols must be a multiple of 32;
  // errors name `where`.
  static PackedMatrix from_ggml(QFormat format, int64_t rows, int64_t cols, std::span<const uint8_t> blocks,
                                std::string_view where);
  // tquant codes [rows * cols] (each < 2^bits) with [rows * cols/group] scales (finite, > 0) and
  // integral zero points in 0..2^bits-1; group 0 means one group per row.
  static PackedMatrix from_codes(int bits, int64_t group, int64_t rows, int64_t cols, std::span<const uint8_t> codes,
                                 std::span<const float> scale, std::span<const float> zero, std::string_view where);

  // Row r of the result is row perm[r] of this matrix (GGUF's Q/K rows, put back in HF order).
  PackedMatrix permuted_rows(std::span<const int64_t> perm) const;
};

}  // namespace tquant
