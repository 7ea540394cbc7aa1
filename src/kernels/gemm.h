#pragma once
// A general row-major sgemm whose result does not depend on the thread count.
#include <cstdint>

namespace tquant {

// C[M,N] = alpha · op(A) · op(B) + beta · C, all row-major (op = transpose when the flag is set;
// A is [M,K] or, transposed, [K,M]; B is [K,N] or [N,K]).
// OpenBLAS's own threading partitions work by thread count, which changes rounding. Here the
// product is split into at most 4 tiles of at least 64 rows of C (or, for short C, columns),
// fixed by the shape alone; each tile is a single-threaded sgemm (OpenBLAS runs serially inside
// an OpenMP parallel region), and K is never split. Called inside a parallel region, it runs
// serially.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace tquant
