// What the CUDA side of the library can do. Compiled by nvcc, or by g++ with SA2VA_NO_CUDA defined.
#include "sa2va_api.h"
#include "errors.h"

#ifndef SA2VA_NO_CUDA
#include <cuda_runtime.h>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include "cuda_check.cuh"
#include "pdl.cuh"

namespace sa2va {
bool built_with_cuda() { return true; }
int cuda_runtime_version() { int v = 0; cudaRuntimeGetVersion(&v); return v; }
int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) { cudaGetLastError(); return 0; }
  return n;
}
// Only this library's (static) runtime reads this per-thread state, so the cached value stays valid and the
// common case costs no runtime call on the per-launch path.
void cuda_set_device(int device) {
  static thread_local int current = -1;
  if (current == device) return;
  SA2VA_CUDA_CHECK(cudaSetDevice(device));
  current = device;
}
int device_sm_count() {
  static int cache[64] = {0};
  int dev = 0;
  SA2VA_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 64) dev = 0;
  if (cache[dev] == 0) {
    int sms = 0;
    SA2VA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    cache[dev] = sms;
  }
  return cache[dev];
}

// SA2VA_RL_PDL=0 turns it off; rl_set_pdl overrides.
static std::atomic<int> g_rl_pdl{-1};
void rl_set_pdl(int mode) { pdl_switch_set(g_rl_pdl, mode); }
bool rl_pdl_enabled() { return pdl_switch_enabled(g_rl_pdl, "SA2VA_RL_PDL"); }
}  // namespace sa2va

#else

namespace sa2va {
bool built_with_cuda() { return false; }
int cuda_runtime_version() { return 0; }
int cuda_device_count() { return 0; }
void cuda_set_device(int) { fail_no_cuda("cuda_set_device"); }
void rl_set_pdl(int) {}
}  // namespace sa2va

#endif
