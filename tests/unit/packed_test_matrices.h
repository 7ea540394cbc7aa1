#pragma once
// Random packed weight matrices and activations for the packed-kernel tests (qgemv_test.cc,
// qgemv_q8act_test.cc): ggml blocks through gguf's own encoders, tquant codes with random scales
// and zero points.
#include <cstdint>
#include <random>
#include <vector>

#include "export/gguf_format.h"
#include "io/half.h"
#include "kernels/qblock_formats.h"

namespace tquant::testing {

// A random matrix in format `f` (group 0: one per row; ggml formats ignore bits and group). With
// `extremes`, every code and zero point is the smallest or the largest the format holds, the
// products that overflow a careless kernel's intermediate sums.
inline PackedMatrix random_matrix(QFormat f, int bits, int64_t group, int64_t rows, int64_t cols, std::mt19937& rng,
                                  bool extremes = false) {
  std::uniform_int_distribution<int> uniform(0, (1 << bits) - 1);
  auto code = [&](std::mt19937& g) { return extremes ? (g() % 2 ? (1 << bits) - 1 : 0) : uniform(g); };
  std::uniform_real_distribution<float> sd(0.001f, 0.1f);
  if (f == QFormat::Packed) {
    const int64_t G = rows * (group == 0 ? 1 : cols / group);
    std::vector<uint8_t> codes(static_cast<size_t>(rows * cols));
    for (auto& c : codes) c = static_cast<uint8_t>(code(rng));
    std::vector<float> scale(G), zero(G);
    for (int64_t i = 0; i < G; ++i) {
      scale[i] = sd(rng);
      zero[i] = static_cast<float>(code(rng));
    }
    return PackedMatrix::from_codes(bits, group, rows, cols, codes, scale, zero, "test");
  }
  const gguf::TensorType t = f == QFormat::Q4_0 ? gguf::TensorType::Q4_0
                             : f == QFormat::Q4_1 ? gguf::TensorType::Q4_1
                                                  : gguf::TensorType::Q8_0;
  const int64_t blocks = rows * cols / 32;
  std::vector<uint8_t> data(static_cast<size_t>(blocks * gguf::block_bytes(t)));
  for (int64_t b = 0; b < blocks; ++b) {
    uint8_t* blk = data.data() + b * gguf::block_bytes(t);
    const uint16_t d = f32_to_f16(sd(rng)), m = f32_to_f16(-sd(rng) * 8);
    if (f == QFormat::Q8_0) {
      int8_t q[32];
      for (auto& v : q) v = static_cast<int8_t>(code(rng) - 128);
      gguf::encode_q8_0(d, q, blk);
    } else {
      uint8_t q[32];
      for (auto& v : q) v = static_cast<uint8_t>(code(rng));
      if (f == QFormat::Q4_0) gguf::encode_q4_0(d, q, blk);
      else gguf::encode_q4_1(d, m, q, blk);
    }
  }
  return PackedMatrix::from_ggml(f, rows, cols, data, "test");
}

inline std::vector<float> random_x(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = nd(rng);
  return x;
}

}  // namespace tquant::testing
