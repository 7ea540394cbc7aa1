#include "wquant/packing.h"

#include "core/error.h"

namespace tquant::wq {
namespace {

void check_bits(int bits, std::string_view where) {
  if (bits < kMinPackBits || bits > kMaxPackBits)
    fail("{}: cannot pack {}-bit codes (supported: {}..{} bits)", where, bits, kMinPackBits, kMaxPackBits);
}

}  // namespace

int64_t packed_row_bytes(int64_t cols, int bits) {
  check_bits(bits, "packed_row_bytes");
  if (cols < 0) fail("packed_row_bytes: negative column count {}", cols);
  return (cols * bits + 7) / 8;
}

std::vector<uint8_t> pack_codes(std::span<const uint8_t> codes, int64_t rows, int64_t cols, int bits,
                                std::string_view where) {
  check_bits(bits, where);
  if (rows < 0 || cols < 0) fail("{}: negative shape [{}, {}]", where, rows, cols);
  if (static_cast<int64_t>(codes.size()) != rows * cols)
    fail("{}: {} codes given for a [{}, {}] matrix", where, codes.size(), rows, cols);
  const int64_t row_bytes = packed_row_bytes(cols, bits);
  const uint32_t maxq = (1u << bits) - 1;
  std::vector<uint8_t> out(static_cast<size_t>(rows * row_bytes));
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* in = codes.data() + r * cols;
    uint8_t* dst = out.data() + r * row_bytes;
    uint32_t acc = 0;  // pending bits, LSB first; never more than 7 + 8 of them
    int pending = 0;
    for (int64_t c = 0; c < cols; ++c) {
      if (in[c] > maxq)
        fail("{}: code {} at row {}, column {} does not fit in {} bits (max {})", where, in[c], r, c, bits, maxq);
      acc |= static_cast<uint32_t>(in[c]) << pending;
      pending += bits;
      while (pending >= 8) {
        *dst++ = static_cast<uint8_t>(acc & 0xffu);
        acc >>= 8;
        pending -= 8;
      }
    }
    if (pending > 0) *dst = static_cast<uint8_t>(acc);
  }
  return out;
}

std::vector<uint8_t> unpack_codes(std::span<const uint8_t> packed, int64_t rows, int64_t cols, int bits,
                                  std::string_view where) {
  check_bits(bits, where);
  if (rows < 0 || cols < 0) fail("{}: negative shape [{}, {}]", where, rows, cols);
  const int64_t row_bytes = packed_row_bytes(cols, bits);
  if (static_cast<int64_t>(packed.size()) != rows * row_bytes)
    fail("{}: {} packed bytes, but [{}, {}] codes of {} bits need {} ({} per row)", where, packed.size(), rows,
         cols, bits, rows * row_bytes, row_bytes);
  const uint32_t mask = (1u << bits) - 1;
  std::vector<uint8_t> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* src = packed.data() + r * row_bytes;
    uint8_t* dst = out.data() + r * cols;
    uint32_t acc = 0;
    int available = 0;
    for (int64_t c = 0; c < cols; ++c) {
      while (available < bits) {
        acc |= static_cast<uint32_t>(*src++) << available;
        available += 8;
      }
      dst[c] = static_cast<uint8_t>(acc & mask);
      acc >>= bits;
      available -= bits;
    }
    if (acc != 0)
      fail("{}: row {} has non-zero padding bits after its {} codes of {} bits (packed with another width or "
           "column count?)", where, r, cols, bits);
  }
  return out;
}

}  // namespace tquant::wq
