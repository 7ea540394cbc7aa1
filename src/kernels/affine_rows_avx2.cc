// affine_rows_steps.h compiled for AVX2 (8 floats a step).
#include <cstdint>

#include "kernels/affine_rows.h"
#include "quant/affine_fast.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

#include "kernels/affine_rows_steps.h"

namespace tquant::affine_rows {

const Kernels kAvx2 = {fake_uniform_steps, fake_columns_steps, recover_codes_steps};

}  // namespace tquant::affine_rows

#pragma GCC pop_options
