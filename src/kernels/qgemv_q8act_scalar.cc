// The reference the SIMD kernels are tested against, bit for bit: the definition in
// qgemv_q8act_block.h applied block by block.
#include "kernels/qgemv_q8act.h"
#include "kernels/qgemv_q8act_block.h"

namespace tquant::q8act {

void matmul_scalar(const PackedMatrix& w, const Q8Activations& xq, int64_t r0, int64_t r1, float* y) {
  const int64_t nb = xq.blocks();
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t t = 0; t < xq.tokens; ++t) {
      float acc[kLanes] = {};
      for (int64_t b = 0; b < nb; ++b) {
        const int64_t xb = t * nb + b;
        const int32_t i = block_int(w, r, b, xq.q.data() + xb * 32, xq.sum[xb]);
        accumulate(acc[b % kLanes], w.format, block_scale(w, r, b), block_min(w, r, b), xq.d[xb], i, xq.sum[xb]);
      }
      y[t * w.rows + r] = reduce_lanes(acc);
    }
}

}  // namespace tquant::q8act
