// Programmatic dependent launch (sm_90+) for the mask-pass and GAE kernels (lora.cu has its own switch, lora_set_pdl).
//
// A kernel launched with the PDL attribute may start while the kernel before it in the stream is still running;
// it waits (griddepcontrol.wait) for that grid to finish and flush before touching global memory, then lets the
// next grid launch (griddepcontrol.launch_dependents). The next kernel's launch latency then overlaps this
// kernel's tail instead of adding a gap: a few microseconds per launch, a third of a small reward or GAE call.
// Without the attribute both instructions are no-ops, so every kernel that may be launched with it starts with
// pdl_wait_and_release().
#pragma once
#include <cuda_runtime.h>

__device__ __forceinline__ void pdl_wait_and_release() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

namespace sa2va {

// rl_set_pdl (sa2va_api.h) and a device of compute capability 9 or more.
bool rl_pdl_enabled();

#ifndef SA2VA_CUDA_EMULATION
// kernel<<<grid, block, smem, stream>>>(args...), with the PDL attribute when rl_pdl_enabled().
template <typename... KArgs, typename... Args>
void launch_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args... args) {
  if (!rl_pdl_enabled()) {
    kernel<<<grid, block, smem, stream>>>(args...);
    return;
  }
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  // errors surface through the caller's SA2VA_CUDA_CHECK_LAUNCH (cudaGetLastError)
  (void)cudaLaunchKernelEx(&cfg, kernel, args...);
}
#endif

}  // namespace sa2va
