// A minimal parallel_for for the CPU implementations. Plain std::thread keeps the library free of an
// OpenMP runtime (libtorch brings its own libgomp; two runtimes in one process oversubscribe cores).
#pragma once
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>
#include <algorithm>
#include "sa2va_api.h"

namespace sa2va {

// Calls fn(begin, end) on disjoint chunks covering [0, n). Chunks are at least `grain` long.
// The first exception thrown by a worker is rethrown on the calling thread.
template <typename F>
void parallel_for(int64_t n, int64_t grain, F&& fn) {
  if (n <= 0) return;
  int64_t threads = std::min<int64_t>(cpu_threads(), std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
  if (threads <= 1) { fn(int64_t(0), n); return; }
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(threads);
  int64_t chunk = (n + threads - 1) / threads;
  for (int64_t t = 0; t < threads; ++t) {
    int64_t b = t * chunk, e = std::min(n, b + chunk);
    if (b >= e) break;
    pool.emplace_back([&, t, b, e] {
      try { fn(b, e); } catch (...) { errors[t] = std::current_exception(); }
    });
  }
  for (auto& th : pool) th.join();
  for (auto& err : errors) if (err) std::rethrow_exception(err);
}

}  // namespace sa2va
