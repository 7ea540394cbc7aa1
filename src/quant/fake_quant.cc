#include "quant/fake_quant.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "kernels/affine_rows.h"
#include "quant/affine_fast.h"

namespace tquant {

namespace {

// Tensors smaller than this are not worth waking the thread pool for.
constexpr int64_t kParallelMin = 1 << 15;
// Per-tensor work is cut into fixed chunks (not per-thread shares) so the split is independent of
// the thread count; elementwise work would be deterministic anyway, this just keeps it obvious.
constexpr int64_t kChunk = 1 << 14;

template <class Code>
int q_uniform(const float* x, Code* out, int64_t n, float s, float z, float qmin, float qmax) {
  int nan = 0;
  for (int64_t i = 0; i < n; ++i) {
    nan |= x[i] != x[i];
    out[i] = static_cast<Code>(static_cast<int32_t>(quantize_code_fast(x[i], s, z, qmin, qmax)));
  }
  return nan;
}

template <class Code>
int q_columns(const float* x, Code* out, int64_t n, const float* s, const float* z, float qmin,
              float qmax) {
  int nan = 0;
  for (int64_t i = 0; i < n; ++i) {
    nan |= x[i] != x[i];
    out[i] = static_cast<Code>(static_cast<int32_t>(quantize_code_fast(x[i], s[i], z[i], qmin, qmax)));
  }
  return nan;
}

// Dequantize loops return whether a code was outside [qmin, qmax].
template <class Code>
int dq_uniform(const Code* in, float* out, int64_t n, float s, float z, int32_t qmin, int32_t qmax) {
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t q = in[i];
    bad |= (q < qmin) | (q > qmax);
    out[i] = s * (static_cast<float>(q) - z);
  }
  return bad;
}

template <class Code>
int dq_columns(const Code* in, float* out, int64_t n, const float* s, const float* z, int32_t qmin,
               int32_t qmax) {
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t q = in[i];
    bad |= (q < qmin) | (q > qmax);
    out[i] = s[i] * (static_cast<float>(q) - z[i]);
  }
  return bad;
}

// Walks the tensor segment by segment. `uniform(offset, n, s, z)` handles n consecutive elements
// sharing one group; `columns(offset, s, z)` handles one full row whose columns have their own
// parameters (per-channel on columns, PEG). Returns the OR of what the callbacks return.
template <class Uniform, class Columns>
int for_each_segment(const QuantParams& p, int64_t rows, int64_t cols, Uniform uniform,
                     Columns columns) {
  const int64_t total = rows * cols;
  const bool par = total >= kParallelMin;
  const Grouping& g = p.grouping;
  int flag = 0;
  if (g.granularity == Granularity::PerTensor) {
    const int64_t chunks = (total + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) reduction(| : flag) if (par)
    for (int64_t i = 0; i < chunks; ++i) {
      const int64_t off = i * kChunk;
      flag |= uniform(off, std::min(kChunk, total - off), p.scale[0], p.zero_point[0]);
    }
  } else if (g.granularity == Granularity::PerChannel && g.channel_axis == 0) {
#pragma omp parallel for schedule(static) reduction(| : flag) if (par)
    for (int64_t r = 0; r < rows; ++r) flag |= uniform(r * cols, cols, p.scale[r], p.zero_point[r]);
  } else if (g.granularity == Granularity::PerGroup) {
    const int64_t gs = g.group_size, per_row = cols / gs;
#pragma omp parallel for schedule(static) reduction(| : flag) if (par)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < per_row; ++j)
        flag |= uniform(r * cols + j * gs, gs, p.scale[r * per_row + j], p.zero_point[r * per_row + j]);
  } else {
    // Column groups: expand to one (s, z) per column once, then every row is a vectorisable pass.
    std::vector<float> cs(cols), cz(cols);
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t k = g.granularity == Granularity::PerChannel ? c : g.channel_group[c];
      cs[c] = p.scale[k];
      cz[c] = p.zero_point[k];
    }
#pragma omp parallel for schedule(static) reduction(| : flag) if (par)
    for (int64_t r = 0; r < rows; ++r) flag |= columns(r * cols, cs.data(), cz.data());
  }
  return flag;
}

[[noreturn]] void fail_nan(const float* x, int64_t rows, int64_t cols, std::string_view where) {
  for (int64_t i = 0; i < rows * cols; ++i)
    if (std::isnan(x[i])) fail("{}: NaN in the input at row {}, column {}", where, i / cols, i % cols);
  fail("{}: NaN in the input", where);
}

void check_integral_zeros(const QuantParams& p, std::string_view where) {
  for (size_t i = 0; i < p.zero_point.size(); ++i)
    if (p.zero_point[i] != std::nearbyint(p.zero_point[i]))
      fail("{}: zero_point[{}] = {} is not an integer; integer codes need integral zero points",
           where, i, p.zero_point[i]);
}

template <class Code>
void check_code_type(const QuantParams& p, std::string_view where) {
  if constexpr (sizeof(Code) == 1) {
    const bool is_signed = std::is_signed_v<Code>;
    if (p.bits > 8) fail("{}: {}-bit codes do not fit a byte", where, p.bits);
    if (is_signed != p.symmetric)
      fail("{}: {} quantization needs {} byte codes", where,
           p.symmetric ? "symmetric" : "asymmetric", p.symmetric ? "int8" : "uint8");
  }
}

template <class Code>
void quantize_impl(const float* x, int64_t rows, int64_t cols, const QuantParams& p, Code* codes,
                   std::string_view where) {
  if (p.grouping.granularity == Granularity::PerToken)
    fail("{}: per_token parameters are dynamic; call per_token_params() before quantize()", where);
  check_fits(p, rows, cols, where);
  check_code_type<Code>(p, where);
  check_integral_zeros(p, where);
  const float qmin = static_cast<float>(p.qmin()), qmax = static_cast<float>(p.qmax());
  const int nan = for_each_segment(
      p, rows, cols,
      [&](int64_t off, int64_t n, float s, float z) {
        return q_uniform(x + off, codes + off, n, s, z, qmin, qmax);
      },
      [&](int64_t off, const float* s, const float* z) {
        return q_columns(x + off, codes + off, cols, s, z, qmin, qmax);
      });
  if (nan) fail_nan(x, rows, cols, where);
}

template <class Code>
void dequantize_impl(const Code* codes, int64_t rows, int64_t cols, const QuantParams& p, float* out,
                     std::string_view where) {
  if (p.grouping.granularity == Granularity::PerToken)
    fail("{}: per_token parameters are dynamic; dequantize with the per_token_params() used to quantize",
         where);
  check_fits(p, rows, cols, where);
  check_code_type<Code>(p, where);
  const int32_t qmin = p.qmin(), qmax = p.qmax();
  const int bad = for_each_segment(
      p, rows, cols,
      [&](int64_t off, int64_t n, float s, float z) {
        return dq_uniform(codes + off, out + off, n, s, z, qmin, qmax);
      },
      [&](int64_t off, const float* s, const float* z) {
        return dq_columns(codes + off, out + off, cols, s, z, qmin, qmax);
      });
  if (bad)
    for (int64_t i = 0; i < rows * cols; ++i)
      if (codes[i] < qmin || codes[i] > qmax)
        fail("{}: code {} at row {}, column {} is outside [{}, {}] for {}-bit {} quantization", where,
             static_cast<int32_t>(codes[i]), i / cols, i % cols, qmin, qmax, p.bits,
             p.symmetric ? "symmetric" : "asymmetric");
}

}  // namespace

void fake_quantize(float* x, int64_t rows, int64_t cols, const QuantParams& params,
                   std::string_view where) {
  QuantParams dynamic;
  const QuantParams* p = &params;
  if (params.grouping.granularity == Granularity::PerToken) {
    validate(params, where);
    dynamic = per_token_params(x, rows, cols, params.bits, params.symmetric, where);
    p = &dynamic;
  } else {
    check_fits(params, rows, cols, where);
  }
  const float qmin = static_cast<float>(p->qmin()), qmax = static_cast<float>(p->qmax());
  const affine_rows::Kernels& rows_kernels = affine_rows::kernels();
  const int nan = for_each_segment(
      *p, rows, cols,
      [&](int64_t off, int64_t n, float s, float z) { return rows_kernels.fake_uniform(x + off, n, s, z, qmin, qmax); },
      [&](int64_t off, const float* s, const float* z) {
        return rows_kernels.fake_columns(x + off, cols, s, z, qmin, qmax);
      });
  // NaN stays NaN through the arithmetic above, so the output still shows where it was.
  if (nan) fail_nan(x, rows, cols, where);
}

void fake_quantize(Tensor& x, const QuantParams& p, std::string_view where) {
  fake_quantize(x.data(), x.rows(), x.cols(), p, where);
}

void quantize(const float* x, int64_t rows, int64_t cols, const QuantParams& p, int32_t* codes,
              std::string_view where) {
  quantize_impl(x, rows, cols, p, codes, where);
}
void quantize(const float* x, int64_t rows, int64_t cols, const QuantParams& p, int8_t* codes,
              std::string_view where) {
  quantize_impl(x, rows, cols, p, codes, where);
}
void quantize(const float* x, int64_t rows, int64_t cols, const QuantParams& p, uint8_t* codes,
              std::string_view where) {
  quantize_impl(x, rows, cols, p, codes, where);
}

void dequantize(const int32_t* codes, int64_t rows, int64_t cols, const QuantParams& p, float* out,
                std::string_view where) {
  dequantize_impl(codes, rows, cols, p, out, where);
}
void dequantize(const int8_t* codes, int64_t rows, int64_t cols, const QuantParams& p, float* out,
                std::string_view where) {
  dequantize_impl(codes, rows, cols, p, out, where);
}
void dequantize(const uint8_t* codes, int64_t rows, int64_t cols, const QuantParams& p, float* out,
                std::string_view where) {
  dequantize_impl(codes, rows, cols, p, out, where);
}

}  // namespace tquant
