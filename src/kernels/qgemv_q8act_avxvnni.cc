// The AVX2 level's many-token kernel on CPUs with AVX-VNNI: the 256-bit register block of
// qgemv_q8act_gemm_ymm.h with vpdpbusd (VEX-encoded, no AVX-512 needed) in place of vpmaddubsw +
// vpmaddwd + vpaddd. Its own file, because its target region may only ever run where
// cpu_has_avx_vnni(); packed_matmul_q8act checks that.
#include "kernels/simd_bytes.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/qgemv_dispatch.h"
#include "kernels/qgemv_q8act.h"
#include "kernels/qgemv_q8act_block.h"
#include "kernels/qgemv_q8act_tiles.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avxvnni")

#include "kernels/qgemv_q8act_gemm.h"
#include "kernels/qgemv_q8act_gemm_ymm.h"

namespace tquant::q8act {
namespace {

// Unsigned codes (8-bit ones too) × signed activations, 4 products a lane, no saturation.
struct Vnni {
  static constexpr int kR = 2, kT = 4;  // 8 integer vectors, 6 operands
  static constexpr bool kSigned8 = false;
  template <bool kSignedCodes>
  static __m256i dot(__m256i acc, __m256i w, __m256i x) {
    static_assert(!kSignedCodes);
    return _mm256_dpbusd_avx_epi32(acc, w, x);
  }
};

}  // namespace

__attribute__((target("avx2,fma,f16c,avxvnni")))
void gemm_avxvnni(const PackedMatrix& w, const TokenTiles& xt, int64_t r0, int64_t r1, float* y) {
  gemm_rows<Ymm<Vnni>>(w, xt, r0, r1, y);
}

}  // namespace tquant::q8act

#pragma GCC pop_options
