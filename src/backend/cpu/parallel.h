// Work split over the OpenMP thread team only where it pays.
#pragma once

#include <omp.h>

#include <cstdint>

namespace tandem::cpu {

// body(i) for every i in [0, n): on the thread team (static schedule) when `parallel`, else
// inline on the calling thread. Not `#pragma omp parallel for if (parallel)`: libgomp enters a
// team even when the condition is false and ends it with a futex system call, about 1.5-2 us a
// region on a virtual machine, more than the work of most layers of a small model (the PP-OCR
// classifier ran ~200 such regions per inference).
// A team of one thread (--threads 1, a step run serially: RunStep::serial, or a nested region
// inside one that already splits the work) is the same region and the same system call, so it
// runs inline too.
template <class Body>
inline void parallel_for(int64_t n, bool parallel, Body&& body) {
  if (!parallel || n < 2 || omp_get_max_threads() == 1 || omp_in_parallel()) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) body(i);
}

}  // namespace tandem::cpu
