#include "kernels/int8_linear.h"

#include <cmath>
#include <cstring>

#include "core/error.h"

namespace tquant {
namespace {

// x = s · (q − z) as the fake quantizer computes it (affine.h); round(x / s) + z recovers q
// exactly for any x it produced, since x / s lies within a few ulps of the integer q − z.
struct Recovered {
  int32_t code;
  bool exact;
};
Recovered recover(float x, float s, float z, float qmin, float qmax) {
  float q = std::nearbyint(x / s) + z;
  q = q < qmin ? qmin : (q > qmax ? qmax : q);
  const float back = s * (q - z);
  return {static_cast<int32_t>(q), std::memcmp(&back, &x, sizeof x) == 0 || (back == 0.f && x == 0.f)};
}

}  // namespace

Int8Activations int8_input_codes(const Int8Linear& l, const float* x, int64_t rows, int64_t cols,
                                 const std::string& layer) {
  const Int8Weight& w = l.weight;
  if (cols != w.k) fail("{}: input has {} columns, the int8 weight {}", layer, cols, w.k);
  const int64_t G = w.groups();
  Int8Activations a;
  a.m = rows;
  a.kp = w.kp;
  a.per_row = l.per_token != nullptr;
  a.codes.assign(static_cast<size_t>(rows * w.kp), 0);
  // Signed symmetric codes move up by 2^(bits-1) into vpdpbusd's unsigned operand; the offset
  // carries the shift into the row-sum compensation.
  const int32_t shift = l.input_symmetric ? (1 << (l.input_bits - 1)) : 0;
  const float qmin = l.input_symmetric ? -static_cast<float>(shift) : 0.f;
  const float qmax = l.input_symmetric ? static_cast<float>(shift - 1) : static_cast<float>((1 << l.input_bits) - 1);
  const float* row_scale = nullptr;
  const float* row_zero = nullptr;
  if (l.per_token) {
    const PerTokenRecord& p = *l.per_token;
    if (p.data != x || p.rows != rows || p.cols != cols)
      fail("{}: its input is not the tensor whose per-token scales point {} recorded (--real-int8 needs the "
           "layer to consume that point's output unchanged)", layer, l.input_point);
    row_scale = p.scale.data();
    row_zero = p.zero.data();
    a.scale.assign(row_scale, row_scale + rows);
    a.offset.resize(rows);
    for (int64_t t = 0; t < rows; ++t) a.offset[t] = static_cast<int32_t>(row_zero[t]) + shift;
  } else {
    a.scale = l.group_scale;
    a.offset.resize(G);
    for (int64_t g = 0; g < G; ++g) a.offset[g] = static_cast<int32_t>(l.group_zero[g]) + shift;
  }
  int64_t bad = -1;
#pragma omp parallel for schedule(static) reduction(max : bad)
  for (int64_t t = 0; t < rows; ++t) {
    const float* xt = x + t * cols;
    uint8_t* out = a.codes.data() + t * w.kp;
    for (int64_t g = 0; g < G; ++g) {
      const float s = row_scale ? row_scale[t] : l.group_scale[g];
      const float z = row_zero ? row_zero[t] : l.group_zero[g];
      for (int64_t j = w.group_begin[g]; j < w.group_begin[g + 1]; ++j) {
        const int32_t c = w.column[j];
        if (c < 0) continue;
        const Recovered r = recover(xt[c], s, z, qmin, qmax);
        if (!r.exact && t * cols + c > bad) bad = t * cols + c;
        out[j] = static_cast<uint8_t>(r.code + shift);
      }
    }
  }
  if (bad >= 0)
    fail("{}: input value {} at row {}, column {} is not on the grid of point {} (--real-int8 needs the layer's "
         "input to be that point's quantized output, unchanged)", layer, x[bad], bad / cols, bad % cols,
         l.input_point);
  return a;
}

void int8_linear_forward(const Int8Linear& l, const float* x, int64_t rows, int64_t cols, const float* bias, float* y,
                         const std::string& layer) {
  if (rows == 0) return;
  const Int8Activations a = int8_input_codes(l, x, rows, cols, layer);
  int8_gemm(a, l.weight, y);
  if (bias) {
    const int64_t n = l.weight.n;
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t r = 0; r < n; ++r) y[t * n + r] += bias[r];
  }
}

}  // namespace tquant
