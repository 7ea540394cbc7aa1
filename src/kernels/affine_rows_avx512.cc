// affine_rows_steps.h compiled for AVX-512, 16 floats a step: the target asks for 512-bit
// vectors, which GCC would otherwise avoid.
#include <cstdint>

#include "kernels/affine_rows.h"
#include "quant/affine_fast.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,prefer-vector-width=512")

#include "kernels/affine_rows_steps.h"

namespace tquant::affine_rows {

const Kernels kAvx512 = {fake_uniform_steps, fake_columns_steps, recover_codes_steps};

}  // namespace tquant::affine_rows

#pragma GCC pop_options
