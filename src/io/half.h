#pragma once
// IEEE binary16 (F16) and bfloat16 (BF16) <-> float32, bit-exact and correctly rounded.
// Widening is exact for every input, subnormals included. Narrowing rounds to nearest, ties to
// even (what PyTorch, NumPy and the hardware instructions do), so files we write match files
// written by others bit for bit. NaN stays NaN (made quiet, sign and top payload bits kept);
// Inf stays Inf; finite values too large for the format become Inf of the same sign.
// Everything here is header-only because the GGUF writer and the kernels call it per element.
#include <bit>
#include <cstdint>

namespace tquant {

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
  // Subnormal or zero: mant * 2^-24. Both factors are exact in float32, so is the product.
  const float magnitude = static_cast<float>(mant) * 0x1p-24f;
  return sign ? -magnitude : magnitude;
}

inline uint16_t f32_to_f16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u)  // NaN: force the quiet bit so a payload of zero cannot turn into Inf
    return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
  if (abs >= 0x47800000u) return sign | 0x7c00u;  // >= 2^16, or Inf: beyond any rounding
  if (abs < 0x38800000u) {                           // below 2^-14: F16 subnormal or zero
    if (abs <= 0x33000000u) return sign;             // <= 2^-25: the tie at 2^-25 goes to 0
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exp;  // value / 2^-24 = mant >> shift, shift in [14, 24]
    uint32_t m = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (m & 1u))) ++m;  // may carry into the smallest normal
    return static_cast<uint16_t>(sign | m);
  }
  // Normal: rebias the exponent (127 -> 15) and drop 13 mantissa bits. A carry out of the
  // mantissa bumps the exponent, which also turns values >= 65520 into Inf as IEEE requires.
  uint32_t h = (abs - 0x38000000u) >> 13;
  const uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

inline float bf16_to_f32(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

inline uint16_t f32_to_bf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  // Adding 0x7fff plus the lowest kept bit rounds to nearest even; a carry overflows into the
  // exponent exactly when the value rounds up to the next binade or to Inf.
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

}  // namespace tquant
