// Shared declarations for the host-facing API of libsa2va_native.
//
// Every entry point takes raw pointers, sizes, scalars and (for CUDA) a stream; never at::Tensor:
// the PyTorch preset ships no libtorch headers, so raw pointers keep this library independent of
// libtorch's C++ ABI (see shared/docs/architecture.md §2). Errors are reported as C++ exceptions,
// which the JavaCPP glue turns into java.lang.RuntimeException with the same message.
#pragma once
#include <cstdint>

#ifndef __CUDACC__
// Opaque on purpose: the JNI glue is compiled by g++ without the CUDA headers.
typedef struct CUstream_st* cudaStream_t;
#else
#include <cuda_runtime.h>
#endif

namespace sa2va {

// Element types, mirrored by dev.sa2va.kernels.DType on the Java side.
enum DType : int { F32 = 0, F16 = 1, BF16 = 2, U8 = 3, I64 = 4, F64 = 5, I32 = 6 };

// True when the library was compiled with nvcc (CUDA kernels present).
bool built_with_cuda();
// CUDA runtime version linked into the library (0 without CUDA).
int cuda_runtime_version();
// Number of visible CUDA devices (0 without CUDA, without a driver, or without a device).
int cuda_device_count();
// Makes `device` current for this thread in the library's own (statically linked) CUDA runtime, whose
// current-device state is separate from libtorch's. Called before launching on a tensor's device.
void cuda_set_device(int device);
// Programmatic dependent launch (sm_90+) for the mask-pass and GAE kernels (common/pdl.cuh): 1 on, 0 off, -1 back to
// the default (SA2VA_RL_PDL, else on). For A/B measurements; results are the same either way.
void rl_set_pdl(int mode);
// Threads used by the CPU implementations (SA2VA_NUM_THREADS, else hardware concurrency).
int cpu_threads();
void set_cpu_threads(int n);
// One Philox4x32-10 block (philox.h), exposed for known-answer tests: out = philox(ctr[0..3], key k0, k1).
void philox_block(const uint32_t* ctr, uint32_t k0, uint32_t k1, uint32_t* out);

}  // namespace sa2va
