#pragma once
// How the packed products (qgemv.h, qgemv_q8act.h) spread a matrix's rows over the threads:
// fixed 16-row slices, a multiple of every kernel's row blocking and small enough to balance the
// threads on a 128-row layer. Threads get rows, never part of a sum, so results do not depend on
// the thread count.
#include <algorithm>
#include <cstdint>

namespace tquant {

// Calls kernel(r0, r1) for every slice of [0, rows), in parallel; then, if bias is given, adds
// bias[r] to y[t * rows + r] for the slice's rows and every token.
template <class Kernel>
void for_row_slices(int64_t rows, int64_t tokens, const float* bias, float* y, Kernel&& kernel) {
  constexpr int64_t kSlice = 16;
  const int64_t slices = (rows + kSlice - 1) / kSlice;
#pragma omp parallel for schedule(static)
  for (int64_t s = 0; s < slices; ++s) {
    const int64_t r0 = s * kSlice, r1 = std::min(rows, r0 + kSlice);
    kernel(r0, r1);
    if (bias)
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t r = r0; r < r1; ++r) y[t * rows + r] += bias[r];
  }
}

}  // namespace tquant
