#include "wquant/packing.h"

#include <gtest/gtest.h>

#include <random>

#include "expect_error.h"

namespace tquant::wq {
namespace {

TEST(Packing, RowBytes) {
  EXPECT_EQ(packed_row_bytes(0, 4), 0);
  EXPECT_EQ(packed_row_bytes(1, 2), 1);
  EXPECT_EQ(packed_row_bytes(8, 3), 3);
  EXPECT_EQ(packed_row_bytes(9, 3), 4);
  EXPECT_EQ(packed_row_bytes(7, 4), 4);
  EXPECT_EQ(packed_row_bytes(5, 8), 5);
  EXPECT_EQ(packed_row_bytes(3, 5), 2);
  testing::expect_error([] { packed_row_bytes(4, 9); }, {"9-bit"});
  testing::expect_error([] { packed_row_bytes(4, 0); }, {"0-bit"});
}

// Code k of a row occupies bits [3k, 3k + 3) of the row's little-endian stream.
TEST(Packing, ThreeBitsByHand) {
  const std::vector<uint8_t> codes = {1, 2, 3, 4, 5, 6, 7, 0, 5};
  // stream: 001 010 011 100 101 110 111 000 101 (code 0 in the lowest bits)
  //   byte 0 = q0 | q1 << 3 | (q2 & 3) << 6             = 1 + 16 + 192     = 0xD1
  //   byte 1 = q2 >> 2 | q3 << 1 | q4 << 4 | (q5 & 1) << 7 = 0 + 8 + 80 + 0 = 0x58
  //   byte 2 = q5 >> 1 | q6 << 2 | q7 << 5              = 3 + 28 + 0       = 0x1F
  //   byte 3 = q8 (bits 24..26), padding zero                             = 0x05
  const std::vector<uint8_t> expected = {0xD1, 0x58, 0x1F, 0x05};
  EXPECT_EQ(pack_codes(codes, 1, 9, 3), expected);
  EXPECT_EQ(unpack_codes(expected, 1, 9, 3), codes);
}

TEST(Packing, FourBitsLowNibbleFirstAndRowsIndependent) {
  // Two rows of 3 codes: each row starts on a fresh byte.
  const std::vector<uint8_t> codes = {0x1, 0x2, 0xF, 0xA, 0xB, 0xC};
  const std::vector<uint8_t> expected = {0x21, 0x0F, 0xBA, 0x0C};
  EXPECT_EQ(pack_codes(codes, 2, 3, 4), expected);
  EXPECT_EQ(unpack_codes(expected, 2, 3, 4), codes);
}

TEST(Packing, EightBitsIsIdentity) {
  const std::vector<uint8_t> codes = {0, 255, 7, 128, 1};
  EXPECT_EQ(pack_codes(codes, 1, 5, 8), codes);
}

TEST(Packing, RoundTripEveryWidthOddShapesExtremeCodes) {
  std::mt19937 rng(7);
  for (int bits = 1; bits <= 8; ++bits) {
    const uint8_t maxq = static_cast<uint8_t>((1 << bits) - 1);
    for (int64_t cols : {1, 3, 5, 7, 13, 64, 129}) {
      const int64_t rows = 3;
      std::vector<uint8_t> codes(rows * cols);
      for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(rng() % (maxq + 1u));
      // Extremes: a row of all max codes, and 0/max at the row edges.
      for (int64_t c = 0; c < cols; ++c) codes[c] = maxq;
      codes[cols] = 0;
      codes[2 * cols - 1] = maxq;
      codes[2 * cols] = maxq;
      codes[3 * cols - 1] = 0;
      const auto packed = pack_codes(codes, rows, cols, bits);
      ASSERT_EQ(static_cast<int64_t>(packed.size()), rows * ((cols * bits + 7) / 8)) << bits << " " << cols;
      EXPECT_EQ(unpack_codes(packed, rows, cols, bits), codes) << bits << " bits, " << cols << " cols";
      // Reference bit order: bit j of a row's stream is bit j % 8 of byte j / 8.
      const int64_t rb = packed_row_bytes(cols, bits);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          unsigned v = 0;
          for (int b = 0; b < bits; ++b) {
            const int64_t j = c * bits + b;
            v |= ((packed[r * rb + j / 8] >> (j % 8)) & 1u) << b;
          }
          ASSERT_EQ(v, codes[r * cols + c]) << bits << " bits, row " << r << ", col " << c;
        }
    }
  }
}

TEST(Packing, Errors) {
  const std::vector<uint8_t> codes = {0, 1, 8, 2};
  testing::expect_error([&] { pack_codes(codes, 1, 4, 3, "layers.0.q"); }, {"layers.0.q", "code 8", "column 2", "3 bits"});
  testing::expect_error([&] { pack_codes(codes, 1, 5, 4, "w"); }, {"w", "4 codes", "[1, 5]"});
  const std::vector<uint8_t> packed = {0x21, 0x0F};
  testing::expect_error([&] { unpack_codes(packed, 2, 3, 4, "t.qweight"); }, {"t.qweight", "2 packed bytes", "need 4"});
  // 3 codes of 4 bits leave the high nibble of the second byte as padding: it must be zero.
  const std::vector<uint8_t> dirty = {0x21, 0xFF};
  testing::expect_error([&] { unpack_codes(dirty, 1, 3, 4, "t.qweight"); }, {"t.qweight", "row 0", "padding"});
}

}  // namespace
}  // namespace tquant::wq
