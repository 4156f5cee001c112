// Emulation stand-in for <cuda_runtime.h> (see emu.h).
#pragma once
#include "emu.h"
typedef struct CUstream_st* cudaStream_t;
typedef int cudaError_t;
constexpr cudaError_t cudaSuccess = 0;
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t) { return "emulated"; }
inline cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) { std::memset(p, v, n); return cudaSuccess; }
inline cudaError_t cudaGetDevice(int* d) { *d = 0; return cudaSuccess; }
inline cudaError_t cudaMalloc(void** p, size_t n) { *p = std::malloc(n); return *p ? cudaSuccess : 2; }
enum cudaDeviceAttr { cudaDevAttrComputeCapabilityMajor = 75, cudaDevAttrMultiProcessorCount = 16 };
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr, int) { *v = 8; return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaFree(void* p) { std::free(p); return cudaSuccess; }
template <typename T> inline cudaError_t cudaMalloc(T** p, size_t n) { return cudaMalloc(reinterpret_cast<void**>(p), n); }
template <typename K>
inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* b, K, int, size_t) { *b = 2; return cudaSuccess; }
// Cooperative launch (CUDA's template overload, kernel pointer rather than const void*): every block alive at once
// (emu::run_blocks), so grid barriers work.
template <typename... A, size_t... I>
inline std::tuple<A...> emu_unpack_args(void** args, std::index_sequence<I...>) {
  return std::tuple<A...>(*static_cast<A*>(args[I])...);
}
template <typename... A>
inline cudaError_t cudaLaunchCooperativeKernel(void (*kernel)(A...), dim3 grid, dim3 block, void** args, size_t shared,
                                               cudaStream_t) {
  std::tuple<A...> t = emu_unpack_args<A...>(args, std::index_sequence_for<A...>{});
  std::apply([&](auto&&... v) { ::emu::launch(grid, block, kernel, shared, true)(v...); }, t);
  return cudaSuccess;
}
