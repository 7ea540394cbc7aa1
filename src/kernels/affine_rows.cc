// The baseline (SSE2) build of affine_rows_steps.h, which is the reference the SIMD levels are
// tested against, and the dispatch by SIMD level.
#include "kernels/affine_rows.h"

#include "kernels/cpu_features.h"
#include "quant/affine_fast.h"
#include "kernels/affine_rows_steps.h"

namespace tquant::affine_rows {

const Kernels kScalar = {fake_uniform_steps, fake_columns_steps, recover_codes_steps};

const Kernels& kernels() {
  switch (simd_level()) {
    case SimdLevel::AVX512: return kAvx512;
    case SimdLevel::AVX2: return kAvx2;
    case SimdLevel::Scalar: break;
  }
  return kScalar;
}

}  // namespace tquant::affine_rows
