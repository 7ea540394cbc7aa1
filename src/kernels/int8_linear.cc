#include "kernels/int8_linear.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "kernels/affine_rows.h"
#include "quant/affine.h"

namespace tquant {
namespace {

// Where a group's real columns sit in the input: `first` when they are a contiguous run (no PEG
// permutation), else −1 and the row is gathered into the stored order first.
struct GroupSpan {
  int64_t begin, width;  // in the stored order: the real columns, before the group's padding
  int64_t first;
};

std::vector<GroupSpan> group_spans(const Int8Weight& w) {
  std::vector<GroupSpan> spans;
  for (int64_t g = 0; g < w.groups(); ++g) {
    const int64_t b = w.group_begin[g], e = w.group_begin[g + 1];
    int64_t width = 0;
    while (b + width < e && w.column[b + width] >= 0) ++width;
    bool run = true;
    for (int64_t j = 1; j < width; ++j) run = run && w.column[b + j] == w.column[b] + j;
    spans.push_back({b, width, run ? int64_t{w.column[b]} : -1});
  }
  return spans;
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
  const std::vector<GroupSpan> spans = group_spans(w);
  const bool gather = std::any_of(spans.begin(), spans.end(), [](const GroupSpan& g) { return g.first < 0; });
  const affine_rows::Kernels& k = affine_rows::kernels();
  int64_t bad_row = rows;
#pragma omp parallel reduction(min : bad_row)
  {
    std::vector<float> stored(gather ? w.kp : 0);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < rows; ++t) {
      const float* xt = x + t * cols;
      if (gather)
        for (int64_t j = 0; j < w.kp; ++j) stored[j] = w.column[j] < 0 ? 0.f : xt[w.column[j]];
      uint8_t* out = a.codes.data() + t * w.kp;
      int off_grid = 0;
      for (int64_t g = 0; g < G; ++g) {
        const GroupSpan& sp = spans[g];
        const float* in = sp.first >= 0 ? xt + sp.first : stored.data() + sp.begin;
        const float s = row_scale ? row_scale[t] : l.group_scale[g];
        const float z = row_zero ? row_zero[t] : l.group_zero[g];
        off_grid |= k.recover_codes(in, out + sp.begin, sp.width, s, z, qmin, qmax, static_cast<float>(shift));
      }
      if (off_grid && t < bad_row) bad_row = t;
    }
  }
  if (bad_row < rows) {
    // The first value of that row off its grid, for the message (the reference rounding).
    for (int64_t g = 0; g < G; ++g)
      for (int64_t j = w.group_begin[g]; j < w.group_begin[g + 1]; ++j) {
        const int32_t c = w.column[j];
        if (c < 0) continue;
        const float v = x[bad_row * cols + c];
        const float s = row_scale ? row_scale[bad_row] : l.group_scale[g];
        const float z = row_zero ? row_zero[bad_row] : l.group_zero[g];
        if (!(fake_quantize_ref(v, s, z, qmin, qmax) == v))
          fail("{}: input value {} at row {}, column {} is not on the grid of point {} (--real-int8 needs the "
               "layer's input to be that point's quantized output, unchanged)", layer, v, bad_row, c, l.input_point);
      }
    fail("{}: an input value at row {} is not on the grid of point {}", layer, bad_row, l.input_point);
  }
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
