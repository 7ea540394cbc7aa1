#pragma once
// What the SIMD kernel files share outside their own target regions: <immintrin.h> without GCC
// 12's false warnings, and the unaligned reads of a block's scalar fields.
//
// GCC 12 reports the deliberate self-initialisation inside _mm512_undefined_epi32 as "(may be)
// used uninitialized" wherever it is inlined: hundreds of false positives located in the header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>
#include <cstring>

namespace tquant::simd {

// An fp16 at p (ggml's d and m). F16C only: it inlines into every AVX2 / AVX-512 target region.
__attribute__((target("f16c"))) inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline uint32_t u32_at(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace tquant::simd
