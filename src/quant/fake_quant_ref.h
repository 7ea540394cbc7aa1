#pragma once
// Plain scalar reference implementations of fake_quant.h: one loop over (row, column) that looks
// up the element's group and applies the formulas of affine.h. Obviously correct and slow; the
// tests compare the optimised kernels against them bit for bit.
#include <cstdint>
#include <string_view>

#include "quant/quant_params.h"

namespace tquant {

// The parameter group of element (r, c) of a [rows, cols] tensor (static granularities only).
int64_t group_of_element(const Grouping& g, int64_t r, int64_t c, int64_t cols);

void fake_quantize_ref(float* x, int64_t rows, int64_t cols, const QuantParams& p, std::string_view where);
void quantize_ref(const float* x, int64_t rows, int64_t cols, const QuantParams& p, int32_t* codes,
                  std::string_view where);
void dequantize_ref(const int32_t* codes, int64_t rows, int64_t cols, const QuantParams& p, float* out,
                    std::string_view where);

}  // namespace tquant
