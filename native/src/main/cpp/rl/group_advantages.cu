// CUDA implementation of the group advantages (see group_advantages.h): one warp per group, two passes over
// the group's rewards (mean, then squared deviations) in double. Batch-std mode runs as one block that first
// computes the batch mean and std the same way.
#include "group_advantages.h"
#include "rl_checks.h"
#include "../common/errors.h"

#ifndef SA2VA_NO_CUDA
#include <cuda_runtime.h>
#include <climits>
#include "../common/cuda_check.cuh"

namespace sa2va {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ double warp_total(double v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;  // in every lane
}

// Block-wide total (every thread gets it); all threads must call.
__device__ double block_total(double v) {
  __shared__ double s[kThreads / 32];
  __shared__ double result;
  v = warp_total(v);
  if ((threadIdx.x & 31) == 0) s[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0.0;
    for (int w = 0; w < kThreads / 32; ++w) t += s[w];
    result = t;
  }
  __syncthreads();
  const double r = result;
  __syncthreads();
  return r;
}

__global__ void __launch_bounds__(kThreads) group_adv_kernel(const float* __restrict__ r, int64_t groups, int64_t g,
                                                             int mode, float eps, float* __restrict__ adv,
                                                             float* __restrict__ stats) {
  double batch_std = 0.0;
  if (mode == GROUP_GRPO_BATCH_STD) {  // launched as a single block
    const int64_t m = groups * g;
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < m; i += kThreads) s += r[i];
    const double mean = block_total(s) / static_cast<double>(m);
    double ss = 0.0;
    for (int64_t i = threadIdx.x; i < m; i += kThreads) ss += (r[i] - mean) * (r[i] - mean);
    batch_std = sqrt(block_total(ss) / static_cast<double>(m - 1));
  }
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (kThreads / 32);
  for (int64_t b = blockIdx.x * (int64_t)(kThreads / 32) + (threadIdx.x >> 5); b < groups; b += warps) {
    const float* rb = r + b * g;
    double s = 0.0;
    for (int64_t j = lane; j < g; j += 32) s += rb[j];
    s = warp_total(s);
    const double mean = s / static_cast<double>(g);
    double ss = 0.0;
    for (int64_t j = lane; j < g; j += 32) ss += (rb[j] - mean) * (rb[j] - mean);
    ss = warp_total(ss);
    const double sd = mode == GROUP_GRPO_BATCH_STD ? batch_std : sqrt(ss / static_cast<double>(g - 1));
    for (int64_t j = lane; j < g; j += 32) {
      const double x = rb[j];
      double a;
      if (mode == GROUP_RLOO) a = x - (s - x) / static_cast<double>(g - 1);
      else if (mode == GROUP_MEAN_ONLY) a = x - mean;
      else a = (x - mean) / (sd + eps);
      adv[b * g + j] = static_cast<float>(a);
    }
    if (stats && lane == 0) {
      stats[b] = static_cast<float>(mean);
      stats[groups + b] = static_cast<float>(sd);
    }
  }
}

}  // namespace

void group_advantages_cuda(const float* rewards, int64_t groups, int64_t g, int mode, float eps, float* adv,
                           float* stats, cudaStream_t stream) {
  check_group_args("group_advantages_cuda", rewards, groups, g, mode, eps, adv);
  int64_t blocks = 1;
  if (mode != GROUP_GRPO_BATCH_STD) {
    blocks = (groups + kThreads / 32 - 1) / (kThreads / 32);
    const int64_t cap = static_cast<int64_t>(device_sm_count()) * 16;
    if (blocks > cap) blocks = cap;
  }
  group_adv_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(rewards, groups, g, mode, eps, adv, stats);
  SA2VA_CUDA_CHECK_LAUNCH("group_adv_kernel");
}

}  // namespace sa2va

#else  // built without nvcc

namespace sa2va {
void group_advantages_cuda(const float*, int64_t, int64_t, int, float, float*, float*, cudaStream_t) {
  fail_no_cuda("group_advantages_cuda");
}
}  // namespace sa2va

#endif
