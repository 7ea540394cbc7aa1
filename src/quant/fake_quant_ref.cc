#include "quant/fake_quant_ref.h"

#include <cmath>

#include "core/error.h"

namespace tquant {

int64_t group_of_element(const Grouping& g, int64_t r, int64_t c, int64_t cols) {
  switch (g.granularity) {
    case Granularity::PerTensor:
      return 0;
    case Granularity::PerChannel:
      return g.channel_axis == 0 ? r : c;
    case Granularity::PerGroup:
      return r * (cols / g.group_size) + c / g.group_size;
    case Granularity::PerEmbeddingGroup:
      return g.channel_group[c];
    case Granularity::PerToken:
      break;
  }
  fail("group_of_element: {} has no static groups", granularity_name(g.granularity));
}

namespace {
// PerToken is resolved per call into per-row parameters, exactly as the optimised path does.
QuantParams resolve(const float* x, int64_t rows, int64_t cols, const QuantParams& p,
                    std::string_view where) {
  if (p.grouping.granularity == Granularity::PerToken)
    return per_token_params(x, rows, cols, p.bits, p.symmetric, where);
  check_fits(p, rows, cols, where);
  return p;
}
}  // namespace

void fake_quantize_ref(float* x, int64_t rows, int64_t cols, const QuantParams& params,
                       std::string_view where) {
  const QuantParams p = resolve(x, rows, cols, params, where);
  const float qmin = static_cast<float>(p.qmin()), qmax = static_cast<float>(p.qmax());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      float& v = x[r * cols + c];
      if (std::isnan(v)) fail("{}: NaN in the input at row {}, column {}", where, r, c);
      const int64_t g = group_of_element(p.grouping, r, c, cols);
      v = fake_quantize_ref(v, p.scale[g], p.zero_point[g], qmin, qmax);
    }
}

void quantize_ref(const float* x, int64_t rows, int64_t cols, const QuantParams& p, int32_t* codes,
                  std::string_view where) {
  check_fits(p, rows, cols, where);
  const float qmin = static_cast<float>(p.qmin()), qmax = static_cast<float>(p.qmax());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const float v = x[r * cols + c];
      if (std::isnan(v)) fail("{}: NaN in the input at row {}, column {}", where, r, c);
      const int64_t g = group_of_element(p.grouping, r, c, cols);
      codes[r * cols + c] =
          static_cast<int32_t>(quantize_code_ref(v, p.scale[g], p.zero_point[g], qmin, qmax));
    }
}

void dequantize_ref(const int32_t* codes, int64_t rows, int64_t cols, const QuantParams& p, float* out,
                    std::string_view where) {
  check_fits(p, rows, cols, where);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t g = group_of_element(p.grouping, r, c, cols);
      out[r * cols + c] =
          dequantize_code_ref(static_cast<float>(codes[r * cols + c]), p.scale[g], p.zero_point[g]);
    }
}

}  // namespace tquant
