// CUDA error checking for launchers: every runtime call and every launch is checked, and the error
// text names the kernel, so a bad launch never passes silently.
#pragma once
#include <cuda_runtime.h>
#include "errors.h"

#define SA2VA_CUDA_CHECK(expr)                                                                 \
  do {                                                                                         \
    cudaError_t err__ = (expr);                                                                \
    if (err__ != cudaSuccess) {                                                                \
      cudaGetLastError(); /* a failed call is also the thread's last error: the next launch */ \
                          /* check would report it against an innocent kernel */               \
      throw std::runtime_error(::sa2va::str_cat("CUDA error in ", __func__, " (", #expr, "): ", \
                                                cudaGetErrorString(err__)));                   \
    }                                                                                          \
  } while (0)

// Launch seam: kernel<<<grid, block, 0, stream>>>(args) on the device; the CPU emulation of native/src/test/cpp
// (same source, fibers instead of threads) defines its own. Dynamic shared memory: launch directly.
#ifndef SA2VA_LAUNCH
#define SA2VA_LAUNCH(grid, block, stream, ...) __VA_ARGS__<<<grid, block, 0, stream>>>
#endif

// Call right after a <<<...>>> launch.
#define SA2VA_CUDA_CHECK_LAUNCH(name)                                                          \
  do {                                                                                         \
    cudaError_t err__ = cudaGetLastError();                                                    \
    if (err__ != cudaSuccess)                                                                  \
      throw std::runtime_error(::sa2va::str_cat("CUDA launch of ", name, " failed: ",           \
                                                cudaGetErrorString(err__)));                   \
  } while (0)

namespace sa2va {
// Streaming multiprocessors of the current device (cached per device).
int device_sm_count();
}
