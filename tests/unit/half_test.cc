#include "io/half.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace tquant {
namespace {

float bits_f32(uint32_t b) { return std::bit_cast<float>(b); }
uint32_t f32_bits(float f) { return std::bit_cast<uint32_t>(f); }

TEST(Half, F16HandComputedPatterns) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.5f), 0xc100);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);   // largest finite F16
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);   // below the midpoint to 2^16
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);   // the midpoint rounds to even, i.e. to Inf
  EXPECT_EQ(f32_to_f16(0x1p-14f), 0x0400);   // smallest normal
  EXPECT_EQ(f32_to_f16(6.0e-8f), 0x0001);    // 6e-8 / 2^-24 = 1.007 -> smallest subnormal
  EXPECT_EQ(f32_to_f16(0x1p-24f), 0x0001);
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);   // tie between 0 and 2^-24 -> even (0)
  EXPECT_EQ(f32_to_f16(0x1.000002p-25f), 0x0001);  // just above the tie
  EXPECT_EQ(f32_to_f16(0x3p-25f), 0x0002);   // 1.5 subnormal steps: tie -> even (2)
  EXPECT_EQ(f32_to_f16(1023.5f * 0x1p-24f), 0x0400);  // tie past the largest subnormal
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f), 0x3c00);     // tie -> even mantissa
  EXPECT_EQ(f32_to_f16(1.0f + 0x3p-11f), 0x3c02);     // tie -> even mantissa (up)
  EXPECT_EQ(f32_to_f16(1e-9f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(1e10f), 0x7c00);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(f32_to_f16(-std::numeric_limits<float>::infinity()), 0xfc00);
}

TEST(Half, F16WideningIsExact) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc100), -2.5f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), 0x1p-24f);
  EXPECT_EQ(f16_to_f32(0x03ff), 1023.0f * 0x1p-24f);
  EXPECT_EQ(f16_to_f32(0x8001), -0x1p-24f);
  EXPECT_EQ(f32_bits(f16_to_f32(0x8000)), 0x80000000u);  // -0 keeps its sign
  EXPECT_EQ(f16_to_f32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_to_f32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7c01)));  // signalling NaN is still NaN, not Inf
}

TEST(Half, NaNPropagatesAndStaysNaN) {
  // Payload only in the low 13 bits would vanish when narrowed; the quiet bit keeps it a NaN.
  const float low_payload_nan = bits_f32(0x7f800001u);
  const uint16_t h = f32_to_f16(low_payload_nan);
  EXPECT_EQ(h & 0x7c00, 0x7c00);
  EXPECT_NE(h & 0x03ff, 0);
  EXPECT_TRUE(std::isnan(f16_to_f32(h)));
  const uint16_t b = f32_to_bf16(low_payload_nan);
  EXPECT_EQ(b, 0x7fc0);
  EXPECT_TRUE(std::isnan(bf16_to_f32(b)));
  EXPECT_EQ(f32_to_f16(bits_f32(0xffc00000u)), 0xfe00);  // sign of a negative NaN survives
  EXPECT_EQ(f32_to_bf16(bits_f32(0xffc00000u)), 0xffc0);
}

TEST(Half, BF16HandComputedPatterns) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(-2.5f), 0xc020);
  EXPECT_EQ(f32_to_bf16(1e-40f), 0x0001);   // f32 subnormal 0x000116c2 -> 2^-133
  EXPECT_EQ(bf16_to_f32(0x0001), 0x1p-133f);
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);   // tie -> even
  EXPECT_EQ(f32_to_bf16(1.0f + 0x3p-8f), 0x3f82);   // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1.2p-8f), 0x3f81); // above the tie
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up to Inf
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(bf16_to_f32(0xc020), -2.5f);
}

TEST(Half, EveryF16AndBF16PatternRoundTrips) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    const bool nan16 = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
    if (nan16)
      ASSERT_TRUE(std::isnan(f16_to_f32(h))) << std::hex << i;
    else
      ASSERT_EQ(f32_to_f16(f16_to_f32(h)), h) << std::hex << i;
    const bool nanb = (h & 0x7f80) == 0x7f80 && (h & 0x7f);
    if (nanb)
      ASSERT_TRUE(std::isnan(bf16_to_f32(h))) << std::hex << i;
    else
      ASSERT_EQ(f32_to_bf16(bf16_to_f32(h)), h) << std::hex << i;
  }
}

// Independent oracle: the result must be a nearest representable value (in exact double
// arithmetic), with ties going to the even pattern. Checked over a spread of all float32 bits.
template <class Widen, class Narrow>
void expect_nearest_even(Widen widen, Narrow narrow, uint16_t inf_bits, const char* what) {
  for (uint64_t b = 0; b < (1ull << 32); b += 65537 * 7) {  // ~9400 samples, every exponent
    // Offsets from a base with the low 16 bits clear hit the exact ties of both formats
    // (0x1000/0x3000 for F16's 13 dropped bits, 0x8000 for BF16's 16) and their neighbours.
    for (uint32_t delta : {0u, 1u, 0xfffu, 0x1000u, 0x1001u, 0x3000u, 0x7fffu, 0x8000u, 0x8001u,
                           0x18000u}) {
      const float x = bits_f32(static_cast<uint32_t>((b & ~0xffffull) + delta));
      if (std::isnan(x)) continue;
      const uint16_t r = narrow(x);
      const uint16_t mag = r & 0x7fff;
      const double err = std::fabs(static_cast<double>(widen(r)) - x);
      if (mag == inf_bits) {
        // Inf is right only if the value is at least halfway past the largest finite one.
        const double top = widen(inf_bits - 1);
        const double ulp = top - static_cast<double>(widen(inf_bits - 2));
        ASSERT_GE(std::fabs(static_cast<double>(x)), top + ulp / 2) << what << " " << x;
        continue;
      }
      const uint16_t sign = r & 0x8000;
      for (int step : {-1, 1}) {
        if (mag == 0 && step < 0) continue;
        const uint16_t nb = static_cast<uint16_t>(sign | (mag + step));
        if ((nb & 0x7fff) >= inf_bits) continue;
        const double nerr = std::fabs(static_cast<double>(widen(nb)) - x);
        ASSERT_LE(err, nerr) << what << " " << x;
        if (err == nerr) {
          ASSERT_EQ(r & 1, 0) << what << " tie must go to even: " << x;
        }
      }
    }
  }
}

TEST(Half, NarrowingIsNearestEvenAgainstExactArithmetic) {
  expect_nearest_even(f16_to_f32, f32_to_f16, 0x7c00, "f16");
  expect_nearest_even(bf16_to_f32, f32_to_bf16, 0x7f80, "bf16");
}

#ifdef __FLT16_MAX__
// A second oracle: the compiler's own float -> _Float16 conversion (libgcc / F16C).
TEST(Half, F16MatchesCompilerConversion) {
  for (uint64_t b = 0; b < (1ull << 32); b += 997) {
    const float x = bits_f32(static_cast<uint32_t>(b));
    if (std::isnan(x)) continue;
    const _Float16 ref = static_cast<_Float16>(x);
    ASSERT_EQ(f32_to_f16(x), std::bit_cast<uint16_t>(ref)) << std::hexfloat << x;
  }
}
#endif

}  // namespace
}  // namespace tquant
