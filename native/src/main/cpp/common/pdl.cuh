// Programmatic dependent launch (sm_90+), for the LoRA kernels (switch: lora_set_pdl) and the mask-pass and GAE
// kernels (switch: rl_set_pdl).
//
// A kernel launched with the PDL attribute may start while the kernel before it in the stream is still running;
// it waits (griddepcontrol.wait) for that grid to finish and flush before touching global memory, then lets the
// next grid launch (griddepcontrol.launch_dependents). The next kernel's launch latency then overlaps this
// kernel's tail instead of adding a gap: a few microseconds per launch, a third of a small reward or GAE call.
// Without the attribute both instructions are no-ops, so every kernel that may be launched with it starts with
// pdl_wait_and_release().
#pragma once
#include <cuda_runtime.h>
#include <atomic>
#include <cstdlib>
#include "cuda_check.cuh"

__device__ __forceinline__ void pdl_wait_and_release() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

namespace sa2va {

// Whether the current device has programmatic dependent launch (compute capability 9 or more); asked once per device.
inline bool device_has_pdl() {
  static int major[64] = {0};
  int dev = 0;
  SA2VA_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 64) return false;
  if (major[dev] == 0) SA2VA_CUDA_CHECK(cudaDeviceGetAttribute(&major[dev], cudaDevAttrComputeCapabilityMajor, dev));
  return major[dev] >= 9;
}

// One PDL switch: `mode` -1 = not decided yet (then the environment variable `env`: "0" turns PDL off, anything else
// or unset leaves it on), 0 = off, 1 = on. The setters (rl_set_pdl, lora_set_pdl) store 0/1, or -1 to go back to
// the environment. On only where the device has PDL.
inline void pdl_switch_set(std::atomic<int>& mode, int v) { mode.store(v < 0 ? -1 : (v ? 1 : 0)); }
inline bool pdl_switch_enabled(std::atomic<int>& mode, const char* env) {
  int v = mode.load();
  if (v < 0) {
    const char* e = std::getenv(env);
    v = (e && e[0] == '0') ? 0 : 1;
    mode.store(v);
  }
  return v && device_has_pdl();
}

// rl_set_pdl (sa2va_api.h) and device_has_pdl().
bool rl_pdl_enabled();

#ifndef SA2VA_CUDA_EMULATION
// kernel<<<grid, block, smem, stream>>>(args...), with the PDL attribute when `pdl`. Returns the error of
// cudaLaunchKernelEx (a plain launch reports through cudaGetLastError, as always).
template <typename... KArgs, typename... Args>
cudaError_t launch_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, bool pdl,
                       Args... args) {
  if (!pdl) {
    kernel<<<grid, block, smem, stream>>>(args...);
    return cudaSuccess;
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
  return cudaLaunchKernelEx(&cfg, kernel, args...);
}
#endif

}  // namespace sa2va
