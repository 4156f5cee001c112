// CUDA implementation of mask_stats (see mask_stats.h).
//
// Memory-bound: each pixel is read once (2-4 bytes of logit + 1 byte of target) and turned into three
// bit tests. Grid = (chunks, samples); each thread streams 16-byte vectors of logits with the matching
// target bytes, keeps 32-bit counts in registers, the block reduces them with warp shuffles and adds
// one int64 triple per block with atomics. TN is derived in a tiny epilogue (TN = P - TP - FP - FN).
#include "mask_stats.h"
#include "../common/errors.h"

#ifndef SA2VA_NO_CUDA
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <algorithm>
#include "../common/cuda_check.cuh"
#include "../common/dtype.h"

namespace sa2va {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float load_f(const float* p) { return *p; }
__device__ __forceinline__ float load_f(const bf16_t* p) { return bf16_to_float(p->bits); }
__device__ __forceinline__ float load_f(const f16_t* p) { return f16_to_float(p->bits); }

// VEC elements of T are loaded as one 16-byte (or narrower) transaction.
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Vec { T v[VEC]; };
template <int VEC>
struct alignas(VEC) ByteVec { uint8_t v[VEC]; };

__device__ __forceinline__ void block_add3(unsigned a, unsigned b, unsigned c, int64_t* out) {
  __shared__ unsigned s[3][kThreads / 32];
  for (int off = 16; off > 0; off >>= 1) {
    a += __shfl_down_sync(0xffffffffu, a, off);
    b += __shfl_down_sync(0xffffffffu, b, off);
    c += __shfl_down_sync(0xffffffffu, c, off);
  }
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) { s[0][warp] = a; s[1][warp] = b; s[2][warp] = c; }
  __syncthreads();
  if (warp == 0) {
    a = lane < kThreads / 32 ? s[0][lane] : 0u;
    b = lane < kThreads / 32 ? s[1][lane] : 0u;
    c = lane < kThreads / 32 ? s[2][lane] : 0u;
    for (int off = 16; off > 0; off >>= 1) {
      a += __shfl_down_sync(0xffffffffu, a, off);
      b += __shfl_down_sync(0xffffffffu, b, off);
      c += __shfl_down_sync(0xffffffffu, c, off);
    }
    if (lane == 0) {
      if (a) atomicAdd(reinterpret_cast<unsigned long long*>(out + 0), static_cast<unsigned long long>(a));
      if (b) atomicAdd(reinterpret_cast<unsigned long long*>(out + 1), static_cast<unsigned long long>(b));
      if (c) atomicAdd(reinterpret_cast<unsigned long long*>(out + 2), static_cast<unsigned long long>(c));
    }
  }
}

// blockIdx.y = sample; blockIdx.x strides over that sample's VEC-groups of pixels.
template <typename T, int VEC>
__global__ void __launch_bounds__(kThreads) mask_stats_kernel(const T* __restrict__ logits,
                                                              const uint8_t* __restrict__ targets,
                                                              int64_t p, float thr, int64_t* __restrict__ out) {
  const int64_t n = blockIdx.y;
  const T* z = logits + n * p;
  const uint8_t* y = targets + n * p;
  const int64_t groups = p / VEC;
  unsigned tp = 0, fp = 0, fn = 0;
  for (int64_t g = blockIdx.x * (int64_t)kThreads + threadIdx.x; g < groups; g += (int64_t)gridDim.x * kThreads) {
    Vec<T, VEC> zv = reinterpret_cast<const Vec<T, VEC>*>(z)[g];
    ByteVec<VEC> yv = reinterpret_cast<const ByteVec<VEC>*>(y)[g];
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      bool pr = load_f(&zv.v[k]) > thr;
      bool gt = yv.v[k] != 0;
      tp += pr & gt;
      fp += pr & !gt;
      fn += !pr & gt;
    }
  }
  // Tail of fewer than VEC pixels: handled by the first block of the sample.
  if (blockIdx.x == 0) {
    for (int64_t i = groups * VEC + threadIdx.x; i < p; i += kThreads) {
      bool pr = load_f(&z[i]) > thr;
      bool gt = y[i] != 0;
      tp += pr & gt;
      fp += pr & !gt;
      fn += !pr & gt;
    }
  }
  block_add3(tp, fp, fn, out + n * 4);
}

__global__ void mask_stats_finish(int64_t n, int64_t p, int64_t* out) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i < n) out[i * 4 + 3] = p - out[i * 4] - out[i * 4 + 1] - out[i * 4 + 2];
}

template <typename T>
void launch(const T* z, const uint8_t* y, int64_t n, int64_t p, float thr, int64_t* out, cudaStream_t stream) {
  constexpr int VEC = 16 / sizeof(T);
  // Vector loads need every row start aligned: the bases and the row pitch (in bytes).
  bool aligned = (reinterpret_cast<uintptr_t>(z) % 16 == 0) && (reinterpret_cast<uintptr_t>(y) % VEC == 0) &&
                 (p % VEC == 0);
  const int64_t vec = aligned ? VEC : 1;
  const int64_t groups = (p + vec - 1) / vec;
  // Enough blocks in flight to cover the memory latency of the whole GPU, spread over the samples.
  const int64_t target_blocks = static_cast<int64_t>(device_sm_count()) * 8;
  int64_t per_sample = std::max<int64_t>(1, std::min<int64_t>((groups + kThreads - 1) / kThreads,
                                                              (target_blocks + n - 1) / n));
  SA2VA_CHECK_ARG(n <= 65535, "mask_stats_cuda: at most 65535 samples per call, got ", n);
  dim3 grid(static_cast<unsigned>(per_sample), static_cast<unsigned>(n));
  if (aligned) mask_stats_kernel<T, VEC><<<grid, kThreads, 0, stream>>>(z, y, p, thr, out);
  else mask_stats_kernel<T, 1><<<grid, kThreads, 0, stream>>>(z, y, p, thr, out);
  SA2VA_CUDA_CHECK_LAUNCH("mask_stats_kernel");
}

}  // namespace

void mask_stats_cuda(const void* logits, int dtype, const uint8_t* targets, int64_t n, int64_t p,
                     float threshold, int64_t* out, cudaStream_t stream) {
  SA2VA_CHECK_ARG(logits && targets && out, "mask_stats_cuda: null pointer");
  SA2VA_CHECK_ARG(n >= 1 && p >= 1, "mask_stats_cuda: need n >= 1 and p >= 1, got n=", n, " p=", p);
  SA2VA_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(int64_t) * 4 * n, stream));
  switch (dtype) {
    case F32: launch(static_cast<const float*>(logits), targets, n, p, threshold, out, stream); break;
    case F16: launch(static_cast<const f16_t*>(logits), targets, n, p, threshold, out, stream); break;
    case BF16: launch(static_cast<const bf16_t*>(logits), targets, n, p, threshold, out, stream); break;
    default: fail_arg(str_cat("mask_stats_cuda: logits dtype ", dtype_name(dtype),
                              " not supported (float32, float16, bfloat16)"));
  }
  mask_stats_finish<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(n, p, out);
  SA2VA_CUDA_CHECK_LAUNCH("mask_stats_finish");
}

}  // namespace sa2va

#else  // built without nvcc

namespace sa2va {
void mask_stats_cuda(const void*, int, const uint8_t*, int64_t, int64_t, float, int64_t*, cudaStream_t) {
  fail_no_cuda("mask_stats_cuda");
}
}  // namespace sa2va

#endif
