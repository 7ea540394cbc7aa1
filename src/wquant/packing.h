#pragma once
// Bit-packing of unsigned integer weight codes for the quantized checkpoint format.
//
// Every row of a [rows, cols] code matrix is packed on its own into packed_row_bytes(cols, bits)
// = ceil(cols * bits / 8) bytes, as a little-endian bit stream: code k of the row occupies bits
// [k * bits, (k + 1) * bits) of the row's stream, least significant bit first, where bit j of
// the stream is bit (j % 8) of byte j / 8. The unused high bits of a row's last byte are zero.
// For 8 bits this is the codes themselves; for 4 bits, code 2i is the low nibble of byte i.
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace tquant::wq {

constexpr int kMinPackBits = 1;
constexpr int kMaxPackBits = 8;

// ceil(cols * bits / 8). Fails for bits outside 1..8 or a negative cols.
int64_t packed_row_bytes(int64_t cols, int bits);

// codes: [rows * cols] row-major, each in [0, 2^bits - 1]; a larger code is an error naming
// `where`, its row and column. Returns [rows * packed_row_bytes(cols, bits)].
std::vector<uint8_t> pack_codes(std::span<const uint8_t> codes, int64_t rows, int64_t cols, int bits,
                                std::string_view where = "pack_codes");

// The inverse. `packed` must hold exactly rows * packed_row_bytes(cols, bits) bytes, and the
// padding bits of every row must be zero (otherwise the data was packed with another width or
// shape); errors name `where`.
std::vector<uint8_t> unpack_codes(std::span<const uint8_t> packed, int64_t rows, int64_t cols, int bits,
                                  std::string_view where = "unpack_codes");

}  // namespace tquant::wq
