// The affine quantizer's row loops (kernels/affine_rows.h) at every SIMD level against the
// reference of quant/affine.h, bit for bit: exact ties, values a few ulps either side of them,
// out-of-range and infinite values, ±0, subnormals and random values, at every tail length of a
// 16-float step; the recovery of codes from values on the grid, and its refusal of every value
// one ulp off it.
#include "kernels/affine_rows.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu_features.h"
#include "quant/affine.h"

namespace tquant {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

bool same_bits(float a, float b) { return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b); }

struct Grid {
  float s, z, qmin, qmax;
};
// Asymmetric 8-bit, symmetric 8-bit, asymmetric 4-bit with a fractional learnt zero point.
const Grid kGrids[] = {{0.013f, 3.f, 0.f, 255.f}, {0.1f, 0.f, -128.f, 127.f}, {0.37f, 7.25f, 0.f, 15.f}};

// Values that probe the rounding: exact ties k + 0.5 of the grid and their float neighbours,
// values beyond the range, infinities, ±0, subnormals, and random values.
std::vector<float> probe_values(const Grid& g, uint32_t seed) {
  std::vector<float> v = {0.f, -0.f, kInf, -kInf, 1e30f, -1e30f, 1e-40f, -1e-40f, std::numeric_limits<float>::min()};
  for (int k = -140; k <= 260; k += 3) {
    float x = g.s * (static_cast<float>(k) + 0.5f);
    v.push_back(x);
    for (int i = 0; i < 3; ++i) v.push_back(x = std::nextafter(x, kInf));
    x = g.s * (static_cast<float>(k) + 0.5f);
    for (int i = 0; i < 3; ++i) v.push_back(x = std::nextafter(x, -kInf));
  }
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 100.f * g.s);
  for (int i = 0; i < 500; ++i) v.push_back(normal(rng));
  return v;
}

// Every level on every prefix length up to 40 (the tails of 8- and 16-float steps) and on the
// whole vector.
template <class Check>
void for_each_level_and_length(size_t total, Check check) {
  for (SimdLevel level : available_simd_levels()) {
    ScopedSimdLevel force(level);
    SCOPED_TRACE(simd_level_name(level));
    for (size_t n = 0; n <= 40; ++n) check(affine_rows::kernels(), n);
    check(affine_rows::kernels(), total);
  }
}

TEST(AffineRows, FakeQuantizationEqualsTheReferenceAtEveryLevel) {
  for (const Grid& g : kGrids) {
    const std::vector<float> v = probe_values(g, 1);
    for_each_level_and_length(v.size(), [&](const affine_rows::Kernels& k, size_t n) {
      std::vector<float> x(v.begin(), v.begin() + n);
      ASSERT_EQ(k.fake_uniform(x.data(), n, g.s, g.z, g.qmin, g.qmax), 0);
      for (size_t i = 0; i < n; ++i)
        ASSERT_TRUE(same_bits(x[i], fake_quantize_ref(v[i], g.s, g.z, g.qmin, g.qmax))) << i << " " << v[i];
    });
  }
}

TEST(AffineRows, PerElementParametersEqualTheReferenceAtEveryLevel) {
  std::vector<float> v, s, z;
  for (const Grid& g : kGrids)
    for (float x : probe_values(g, 2)) {
      v.push_back(x);
      s.push_back(g.s);
      z.push_back(g.z);
    }
  const float qmin = 0.f, qmax = 255.f;
  for_each_level_and_length(v.size(), [&](const affine_rows::Kernels& k, size_t n) {
    std::vector<float> x(v.begin(), v.begin() + n);
    ASSERT_EQ(k.fake_columns(x.data(), n, s.data(), z.data(), qmin, qmax), 0);
    for (size_t i = 0; i < n; ++i)
      ASSERT_TRUE(same_bits(x[i], fake_quantize_ref(v[i], s[i], z[i], qmin, qmax))) << i << " " << v[i];
  });
}

TEST(AffineRows, NaNIsReportedAndKeptAtEveryLevel) {
  const Grid g = kGrids[0];
  for_each_level_and_length(40, [&](const affine_rows::Kernels& k, size_t n) {
    for (size_t at = 0; at < n; at += 7) {
      std::vector<float> x(n, 0.5f);
      x[at] = std::nanf("");
      ASSERT_EQ(k.fake_uniform(x.data(), n, g.s, g.z, g.qmin, g.qmax), 1) << at;
      EXPECT_TRUE(std::isnan(x[at]));
      std::vector<float> s(n, g.s), z(n, g.z);
      x[at] = std::nanf("");
      ASSERT_EQ(k.fake_columns(x.data(), n, s.data(), z.data(), g.qmin, g.qmax), 1) << at;
    }
  });
}

TEST(AffineRows, CodesAreRecoveredFromTheGridAndValuesOffItAreRefused) {
  for (const Grid& g : kGrids) {
    if (g.z != std::nearbyint(g.z)) continue;  // integer codes need an integral zero point
    const float shift = g.qmin < 0 ? -g.qmin : 0.f;
    std::vector<float> on_grid = probe_values(g, 3);
    for (float& x : on_grid)
      if (std::isfinite(x)) x = fake_quantize_ref(x, g.s, g.z, g.qmin, g.qmax);
      else x = 0.f;
    for_each_level_and_length(on_grid.size(), [&](const affine_rows::Kernels& k, size_t n) {
      std::vector<uint8_t> codes(n, 0xAA);
      ASSERT_EQ(k.recover_codes(on_grid.data(), codes.data(), n, g.s, g.z, g.qmin, g.qmax, shift), 0);
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(codes[i], quantize_code_ref(on_grid[i], g.s, g.z, g.qmin, g.qmax) + shift) << i;
      // One ulp off the grid anywhere, or a NaN, is refused.
      for (size_t at = 0; at < n; at += 5) {
        std::vector<float> x(on_grid.begin(), on_grid.begin() + n);
        x[at] = std::nextafter(x[at], kInf);
        ASSERT_EQ(k.recover_codes(x.data(), codes.data(), n, g.s, g.z, g.qmin, g.qmax, shift), 1) << at;
        x[at] = std::nanf("");
        ASSERT_EQ(k.recover_codes(x.data(), codes.data(), n, g.s, g.z, g.qmin, g.qmax, shift), 1) << at;
      }
    });
  }
}

}  // namespace
}  // namespace tquant
