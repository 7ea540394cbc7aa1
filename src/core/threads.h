#pragma once
// One place that sets the thread count for OpenMP loops and for OpenBLAS. Results do not depend
// on it: parallel loops split over independent rows, and no reduction is split across threads.
namespace tquant {

void set_num_threads(int n);  // n <= 0: all cores
int num_threads();

}  // namespace tquant
