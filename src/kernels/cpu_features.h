#pragma once
// Which SIMD kernels run: detected once from the CPU, optionally lowered by the environment
// variable TQUANT_SIMD=scalar|avx2|avx512 (so tests and benchmarks can compare every level on
// one machine). Every kernel family keeps a scalar reference; the SIMD variants are compiled
// with __attribute__((target(...))) so the binary stays portable to baseline x86-64.
#include <vector>

namespace tquant {

enum class SimdLevel { Scalar = 0, AVX2 = 1, AVX512 = 2 };

// What the CPU offers. AVX2 means AVX2 + FMA + F16C; AVX512 means F, BW, VL and VNNI on top
// (the int8 GEMM relies on vpdpbusd, and one level for every kernel keeps dispatch simple).
SimdLevel detected_simd_level();
// Every level this CPU can run, scalar first (tests compare each against the scalar reference).
std::vector<SimdLevel> available_simd_levels();

// The level kernels use: the detected one, or TQUANT_SIMD when set. An unknown value, or one
// above what the CPU offers, is an error naming the variable (asking for AVX-512 on a machine
// without it would otherwise crash with an illegal instruction).
SimdLevel simd_level();

const char* simd_level_name(SimdLevel level);  // "scalar", "avx2", "avx512"

// Whether the CPU has AVX-VNNI (vpdpbusd on ymm registers with a VEX encoding, no AVX-512 needed).
// Not a level of its own: kernels at the AVX2 level may use it where it exists, and their
// tests run them both with and without it.
bool cpu_has_avx_vnni();

// Forces a level for the lifetime of the object (tests and benchmarks); nests. A level above
// the detected one is an error.
class ScopedSimdLevel {
 public:
  explicit ScopedSimdLevel(SimdLevel level);
  ~ScopedSimdLevel();
  ScopedSimdLevel(const ScopedSimdLevel&) = delete;
  ScopedSimdLevel& operator=(const ScopedSimdLevel&) = delete;

 private:
  int previous_;
};

}  // namespace tquant
