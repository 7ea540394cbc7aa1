#pragma once
// Makes the BLAS/LAPACK calls of the current thread single-threaded for the guard's lifetime.
//
// The weight solvers split their GEMMs into tiles fixed by the problem's shape and run each tile
// as one single-threaded BLAS call, so that results do not depend on the thread count (OpenBLAS's
// own threading partitions work by thread count, and its threaded Cholesky even blocks
// differently). The OpenMP build of OpenBLAS runs serially when omp_get_max_threads() is 1 or it
// is called inside an active parallel region; the second alone is not enough (a team of one
// thread, e.g. OMP_DYNAMIC or a single tile, is not active), so the guard sets the calling
// thread's OpenMP thread count to 1. That setting is per thread (per task), so it is safe inside
// a parallel region and affects no other thread.
#include <omp.h>

namespace tquant::wq {

class SerialBlas {
 public:
  SerialBlas() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~SerialBlas() { omp_set_num_threads(saved_); }
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;

 private:
  int saved_;
};

}  // namespace tquant::wq
