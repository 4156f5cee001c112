// See gpu_sleep.h.
#include "gpu_sleep.h"
#include "../common/errors.h"

#ifndef SA2VA_NO_CUDA
#include <cuda_runtime.h>
#include "../common/cuda_check.cuh"

namespace sa2va {
namespace {
__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void gpu_sleep_kernel(uint64_t ns) {
  const uint64_t start = global_ns();
  while (global_ns() - start < ns) __nanosleep(1000);
}
}  // namespace

void gpu_sleep_cuda(int64_t nanoseconds, cudaStream_t stream) {
  SA2VA_CHECK_ARG(nanoseconds >= 0 && nanoseconds <= 1000000000LL, "gpu_sleep_cuda: nanoseconds must be in [0, 1e9], got ",
                  nanoseconds);
  gpu_sleep_kernel<<<1, 1, 0, stream>>>(static_cast<uint64_t>(nanoseconds));
  SA2VA_CUDA_CHECK_LAUNCH("gpu_sleep_kernel");
}
}  // namespace sa2va

#else

namespace sa2va {
void gpu_sleep_cuda(int64_t, cudaStream_t) { fail_no_cuda("gpu_sleep_cuda"); }
}  // namespace sa2va

#endif
