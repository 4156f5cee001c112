// CUDA implementation of GAE (see gae.h for the recurrence and the two schedules).
//
// Block = E environments (threadIdx.x, consecutive envs: coalesced loads of a time-major row) x K chunks of
// time (threadIdx.y), about 256 threads. Chunk k covers steps [k*Lc, (k+1)*Lc). With K = 1 each thread walks its environment
// back over all T steps (large N: enough threads, every load coalesced). With K > 1:
//   1. each thread composes the affine maps of its chunk, A_start = D + C * A_end (walking back);
//   2. an inclusive suffix scan over the K chunks (Hillis-Steele in shared memory, log2 K steps) of
//      (C, D) o (C', D') = (C C', D + C D') gives each chunk its incoming A_end = D of chunk k+1;
//   3. each thread walks its chunk again writing A and the returns (the second read hits L1/L2).
// The normalisation statistics use the last-block epilogue of workspace.h (sums of A and A^2 in double per
// block, combined in block order), then one elementwise launch rescales A.
#include "gae.h"
#include "rl_checks.h"
#include "../common/errors.h"

#ifndef SA2VA_NO_CUDA
#include <cuda_runtime.h>
#include <algorithm>
#include <climits>
#include <cmath>
#include "gae_step.h"
#include "../common/cuda_check.cuh"
#include "../common/last_block.cuh"
#include "../common/workspace.h"

namespace sa2va {
namespace {

struct GaeArgs {
  const float* r;
  const float* v;
  const void* term;
  int term_dtype;
  const void* trunc;
  int trunc_dtype;
  const float* tv;
  const float* boot;
  int64_t t, n;
  float gamma, lambda;
  float* adv;
  float* ret;
  int normalize;
  double* partials;    // [gridDim.x][2]
  unsigned* counter;
  float* norm_stats;   // {mean, std}
};

__device__ __forceinline__ GaeStep step_at(const GaeArgs& a, int64_t s, int64_t j, float next) {
  const int64_t i = s * a.n + j;
  const bool tr = flag_at(a.trunc, a.trunc_dtype, i);
  return gae_step(a.r[i], a.v[i], next, flag_at(a.term, a.term_dtype, i), tr, tr ? a.tv[i] : 0.0f, a.gamma, a.lambda);
}

__device__ __forceinline__ float next_value(const GaeArgs& a, int64_t s, int64_t j) {
  return s + 1 < a.t ? a.v[(s + 1) * a.n + j] : (a.boot ? a.boot[j] : 0.0f);
}

__global__ void __launch_bounds__(512) gae_kernel(const GaeArgs a) {
  extern __shared__ float smem[];  // [2][K][E]
  const int E = blockDim.x, K = blockDim.y, x = threadIdx.x, k = threadIdx.y;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * E + x;
  const bool active = j < a.n;
  const int64_t lc = (a.t + K - 1) / K;
  const int64_t t0 = k * lc, t1 = t0 + lc < a.t ? t0 + lc : a.t;
  float incoming = 0.0f;
  if (K > 1) {
    float C = 1.0f, D = 0.0f;
    if (active) {
#pragma unroll 4
      for (int64_t s = t1 - 1; s >= t0; --s) {
        GaeStep st = step_at(a, s, j, next_value(a, s, j));
        D = st.delta + st.c * D;
        C = st.c * C;
      }
    }
    float* sC = smem;
    float* sD = smem + K * E;
    sC[k * E + x] = C;
    sD[k * E + x] = D;
    __syncthreads();
    for (int off = 1; off < K; off <<= 1) {
      float c2 = 1.0f, d2 = 0.0f;
      if (k + off < K) {
        c2 = sC[(k + off) * E + x];
        d2 = sD[(k + off) * E + x];
      }
      __syncthreads();
      D = D + C * d2;
      C = C * c2;
      sC[k * E + x] = C;
      sD[k * E + x] = D;
      __syncthreads();
    }
    incoming = k + 1 < K ? sD[(k + 1) * E + x] : 0.0f;
  }
  double s1 = 0.0, s2 = 0.0;
  if (active) {
    float A = incoming;
    float next = next_value(a, t1 - 1, j);
#pragma unroll 4
    for (int64_t s = t1 - 1; s >= t0; --s) {
      const int64_t i = s * a.n + j;
      const float v = a.v[i];
      const bool tr = flag_at(a.trunc, a.trunc_dtype, i);
      GaeStep st = gae_step(a.r[i], v, next, flag_at(a.term, a.term_dtype, i), tr, tr ? a.tv[i] : 0.0f, a.gamma,
                            a.lambda);
      A = st.delta + st.c * A;
      a.adv[i] = A;
      if (a.ret) a.ret[i] = A + v;
      next = v;
      s1 += A;
      s2 += static_cast<double>(A) * A;
    }
  }
  if (!a.normalize) return;
  // Normalisation statistics: per-block sums, combined by the last block.
  DSums<2> acc = block_sum_any<2>(DSums<2>{{s1, s2}});
  const int tid = block_tid();
  if (tid == 0) {
    a.partials[2 * blockIdx.x] = acc.v[0];
    a.partials[2 * blockIdx.x + 1] = acc.v[1];
  }
  if (!last_block_arrive(a.counter, gridDim.x)) return;
  const DSums<2> tot = sum_partials<2>(a.partials, gridDim.x);
  if (tid == 0) {
    const double cnt = static_cast<double>(a.t) * static_cast<double>(a.n);
    const double mean = tot.v[0] / cnt;
    double var = (tot.v[1] - cnt * mean * mean) / (cnt - 1.0);
    var = var > 0.0 ? var : 0.0;
    a.norm_stats[0] = static_cast<float>(mean);
    a.norm_stats[1] = static_cast<float>(sqrt(var));
    *a.counter = 0u;
  }
}

__global__ void normalize_kernel(float* adv, int64_t m, const float* stats, float eps) {
  const float mean = stats[0], inv = 1.0f / (stats[1] + eps);
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < m; i += (int64_t)gridDim.x * blockDim.x) {
    adv[i] = (adv[i] - mean) * inv;
  }
}

int next_pow2(int64_t v) {
  int p = 1;
  while (p < v && p < (1 << 30)) p <<= 1;
  return p;
}

int pick_chunks(int64_t t, int64_t n, int algo, int sms) {
  if (algo == 1) return 1;
  // Chunks of at least 8 steps; in auto mode only as many as it takes to have ~2048 threads per SM.
  int kmax = 1;
  while (kmax < 512 && t / (2 * kmax) >= 8) kmax <<= 1;
  if (algo == 2) return kmax > 1 ? kmax : (t >= 2 ? 2 : 1);
  const int64_t want = static_cast<int64_t>(sms) * 2048;
  int k = 1;
  while (k < kmax && n * k < want) k <<= 1;
  return k;
}

}  // namespace

int gae_cuda_chunks(int64_t t, int64_t n, int algo) {
  return pick_chunks(t, n, algo, algo == 0 ? device_sm_count() : 1);
}

void gae_cuda(const float* rewards, const float* values, const void* terminated, int term_dtype, const void* truncated,
              int trunc_dtype, const float* trunc_values, const float* bootstrap, int64_t t, int64_t n, float gamma,
              float lambda, float eps, float* adv, float* ret, float* norm_stats, int algo, cudaStream_t stream) {
  check_gae_args("gae_cuda", rewards, values, terminated, term_dtype, truncated, trunc_dtype, trunc_values, t, n, gamma,
                 lambda, eps, adv, norm_stats);
  SA2VA_CHECK_ARG(algo >= 0 && algo <= 2, "gae_cuda: algo must be 0 (auto), 1 (per environment) or 2 (chunked)");
  const int K = pick_chunks(t, n, algo, device_sm_count());
  // Blocks of ~256 threads, so that even 1M elements spread over most SMs; with K = 1, 256 environments.
  int E = K == 1 ? std::min(256, std::max(32, next_pow2(n)))
                 : static_cast<int>(std::min<int64_t>(next_pow2(n), std::max(1, 256 / K)));
  if (E * K < 32) E = 32 / K;  // whole warps: the reductions shuffle with a full mask
  const int64_t blocks = (n + E - 1) / E;
  SA2VA_CHECK_ARG(blocks <= INT_MAX, "gae_cuda: too many environments (", n, ")");
  GaeArgs a{rewards, values, terminated, term_dtype, truncated, trunc_dtype, trunc_values, bootstrap, t, n, gamma,
            lambda, adv, ret, norm_stats != nullptr, nullptr, nullptr, norm_stats};
  if (norm_stats) {
    StreamWorkspace ws = stream_workspace(stream, 1, static_cast<size_t>(blocks) * 2 * sizeof(double));
    a.counter = ws.counters;
    a.partials = static_cast<double*>(ws.scratch);
  }
  const size_t smem = K > 1 ? 2 * sizeof(float) * K * E : 0;
  gae_kernel<<<static_cast<unsigned>(blocks), dim3(E, K), smem, stream>>>(a);
  SA2VA_CUDA_CHECK_LAUNCH("gae_kernel");
  if (norm_stats) {
    const int64_t m = t * n;
    const int64_t nb = std::min<int64_t>((m + 255) / 256, static_cast<int64_t>(device_sm_count()) * 8);
    normalize_kernel<<<static_cast<unsigned>(nb), 256, 0, stream>>>(adv, m, norm_stats, eps);
    SA2VA_CUDA_CHECK_LAUNCH("gae normalize_kernel");
  }
}

}  // namespace sa2va

#else  // built without nvcc

namespace sa2va {
void gae_cuda(const float*, const float*, const void*, int, const void*, int, const float*, const float*, int64_t,
              int64_t, float, float, float, float*, float*, float*, int, cudaStream_t) {
  fail_no_cuda("gae_cuda");
}
int gae_cuda_chunks(int64_t, int64_t, int) { fail_no_cuda("gae_cuda_chunks"); }
}  // namespace sa2va

#endif
