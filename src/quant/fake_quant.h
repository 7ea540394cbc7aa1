#pragma once
// Applying QuantParams to a [rows, cols] float buffer: fake quantization (quantize then
// dequantize, in place — what an activation hook does) and conversion to and from integer codes
// (what weight PTQ and export need). All of them agree bit for bit with the scalar reference in
// affine.h / fake_quant_ref.h, and dequantize(quantize(x)) == fake_quantize(x) exactly.
//
// `where` names the quantization point or weight in every error message. A NaN in the input is an
// error (it would silently become a garbage code); ±inf saturates to the range end like any other
// out-of-range value. On error an in-place buffer may be partly quantized.
// Work is split over rows (or fixed chunks for per-tensor), never inside a reduction, so results
// do not depend on the thread count.
#include <cstdint>
#include <string_view>

#include "core/tensor.h"
#include "quant/quant_params.h"

namespace tquant {

void fake_quantize(float* x, int64_t rows, int64_t cols, const QuantParams& p, std::string_view where);
// The tensor's 2-D view: rows() x cols() (all leading dimensions are rows).
void fake_quantize(Tensor& x, const QuantParams& p, std::string_view where);

// Integer codes q = clamp(round(x/s) + z, qmin, qmax). Needs static parameters (not PerToken:
// call per_token_params first) with integral zero points. The int8/uint8 overloads need
// bits <= 8 and symmetric / asymmetric parameters respectively, so every code fits.
void quantize(const float* x, int64_t rows, int64_t cols, const QuantParams& p, int32_t* codes,
              std::string_view where);
void quantize(const float* x, int64_t rows, int64_t cols, const QuantParams& p, int8_t* codes,
              std::string_view where);
void quantize(const float* x, int64_t rows, int64_t cols, const QuantParams& p, uint8_t* codes,
              std::string_view where);

// x̂ = s (q - z). Codes outside [qmin, qmax] are an error (they were not produced by quantize).
void dequantize(const int32_t* codes, int64_t rows, int64_t cols, const QuantParams& p, float* out,
                std::string_view where);
void dequantize(const int8_t* codes, int64_t rows, int64_t cols, const QuantParams& p, float* out,
                std::string_view where);
void dequantize(const uint8_t* codes, int64_t rows, int64_t cols, const QuantParams& p, float* out,
                std::string_view where);

}  // namespace tquant
