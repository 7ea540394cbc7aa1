#include "kernels/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace tquant {
namespace {

// -1: no override in force (read TQUANT_SIMD).
std::atomic<int> g_forced{-1};

SimdLevel detect() {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  // GCC 12's __builtin_cpu_supports knows no "f16c"; every CPU with AVX2 and FMA has it.
  if (!avx2) return SimdLevel::Scalar;
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  return avx512 ? SimdLevel::AVX512 : SimdLevel::AVX2;
}

SimdLevel parse_env(SimdLevel hw) {
  const char* v = std::getenv("TQUANT_SIMD");
  if (!v || !*v) return hw;
  const std::string s = v;
  SimdLevel want;
  if (s == "scalar") want = SimdLevel::Scalar;
  else if (s == "avx2") want = SimdLevel::AVX2;
  else if (s == "avx512") want = SimdLevel::AVX512;
  else fail("TQUANT_SIMD=\"{}\" is not a SIMD level (scalar, avx2 or avx512)", s);
  if (want > hw)
    fail("TQUANT_SIMD={} asks for more than this CPU offers ({})", s, simd_level_name(hw));
  return want;
}

}  // namespace

SimdLevel detected_simd_level() {
  static const SimdLevel hw = detect();
  return hw;
}

SimdLevel simd_level() {
  const int forced = g_forced.load(std::memory_order_relaxed);
  if (forced >= 0) return static_cast<SimdLevel>(forced);
  static const SimdLevel from_env = parse_env(detected_simd_level());
  return from_env;
}

bool cpu_has_avx_vnni() {
  // libgcc checks that the OS saves the ymm state for every AVX feature it reports.
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni");
  }();
  return has;
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar: return "scalar";
    case SimdLevel::AVX2: return "avx2";
    case SimdLevel::AVX512: return "avx512";
  }
  return "?";
}

ScopedSimdLevel::ScopedSimdLevel(SimdLevel level) : previous_(g_forced.load()) {
  if (level > detected_simd_level())
    fail("cannot force SIMD level {}: this CPU offers {}", simd_level_name(level),
         simd_level_name(detected_simd_level()));
  g_forced.store(static_cast<int>(level));
}

ScopedSimdLevel::~ScopedSimdLevel() { g_forced.store(previous_); }

std::vector<SimdLevel> available_simd_levels() {
  std::vector<SimdLevel> out = {SimdLevel::Scalar};
  if (detected_simd_level() >= SimdLevel::AVX2) out.push_back(SimdLevel::AVX2);
  if (detected_simd_level() >= SimdLevel::AVX512) out.push_back(SimdLevel::AVX512);
  return out;
}

}  // namespace tquant
