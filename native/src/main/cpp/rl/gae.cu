// CUDA implementation of GAE (see gae.h for the recurrence and the schedules).
//
// Register scan (gae_scan_kernel, the default up to 8M elements): see the comment at the kernel.
//
// Older schedules (gae_kernel), for larger rollouts and tests: block = E environments (threadIdx.x, consecutive
// envs: coalesced loads of a time-major row) x K chunks of time (threadIdx.y), about 256 threads. Chunk k covers
// steps [k*Lc, (k+1)*Lc). With K = 1 each thread walks its environment back over all T steps (large N: enough
// threads, every load coalesced). With K > 1:
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

// Dynamic shared memory; the CPU emulation (native/src/test/cpp/cuda_emu) hands out a buffer per block instead.
#ifdef SA2VA_CUDA_EMULATION
#define GAE_DYN_SMEM(T, name) T* name = ::emu::dyn_smem<T>()
#else
#define GAE_DYN_SMEM(T, name) extern __shared__ T name[]
#endif

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
  float eps;
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
  GAE_DYN_SMEM(float, smem);  // [2][K][E]
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

// ---- register scan (all shapes with T <= 16 * 256) ----------------------------------------------------------
// Block = E environments (x) x K chunks of LC steps (y). Each thread loads its whole chunk at once (every load
// issued before the dependent chain), turns it into (delta_t, c_t) pairs kept in registers, composes them into
// one affine map A_start = D + C * A_end, a suffix scan over the K chunks in shared memory (Hillis-Steele,
// log2 K steps, double buffered) gives each chunk its incoming A, and a second sweep over the registers
// writes A and the returns: every input is read once. With normalisation the launch is cooperative: the
// block sums meet at a grid barrier (last_block.cuh) and the normalised advantages are written from the
// registers after it, so normalising costs no second launch and no second pass over the advantages.
constexpr int scan_max_threads(int lc) { return lc >= 16 ? 512 : 1024; }  // 16 steps need > 64 registers

template <int LC>
__global__ void __launch_bounds__(scan_max_threads(LC)) gae_scan_kernel(const GaeArgs a) {
  GAE_DYN_SMEM(float2, sm2);  // [2][K][E]
  const int E = blockDim.x, K = blockDim.y, x = threadIdx.x, k = threadIdx.y;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * E + x;
  const bool active = j < a.n;
  const int64_t t0 = static_cast<int64_t>(k) * LC;
  float dl[LC], cf[LC], vv[LC];
  {
    float rr[LC], tv[LC];
    bool te[LC], tr[LC];
#pragma unroll
    for (int s = 0; s < LC; ++s) {
      const int64_t t = t0 + s;
      rr[s] = 0.0f; vv[s] = 0.0f; tv[s] = 0.0f; te[s] = false; tr[s] = false;
      if (active && t < a.t) {
        const int64_t i = t * a.n + j;
        rr[s] = __ldg(a.r + i);
        vv[s] = __ldg(a.v + i);
        te[s] = flag_at(a.term, a.term_dtype, i);
        if (a.trunc) {
          tr[s] = flag_at(a.trunc, a.trunc_dtype, i);
          tv[s] = __ldg(a.tv + i);  // unconditional: no second round trip; unused entries never leak (a select)
        }
      }
    }
    const int64_t te_end = t0 + LC;
    float v_end = 0.0f;  // V after the chunk's last step: the next chunk's first value, or the bootstrap
    if (active && t0 < a.t) v_end = te_end < a.t ? __ldg(a.v + te_end * a.n + j) : (a.boot ? __ldg(a.boot + j) : 0.0f);
    const float boot = (active && a.boot) ? __ldg(a.boot + j) : 0.0f;
#pragma unroll
    for (int s = 0; s < LC; ++s) {
      const int64_t t = t0 + s;
      if (active && t < a.t) {
        const float next = t + 1 < a.t ? (s + 1 < LC ? vv[s + 1] : v_end) : boot;
        const GaeStep st = gae_step(rr[s], vv[s], next, te[s], tr[s], tv[s], a.gamma, a.lambda);
        dl[s] = st.delta;
        cf[s] = st.c;
      } else {
        dl[s] = 0.0f;  // identity map: steps past T (or idle threads) pass A through
        cf[s] = 1.0f;
      }
    }
  }
  float C = 1.0f, D = 0.0f;
#pragma unroll
  for (int s = LC - 1; s >= 0; --s) {
    D = dl[s] + cf[s] * D;
    C = cf[s] * C;
  }
  // Inclusive suffix scan over the chunks: (C, D) o (C', D') = (C C', D + C D'), chunk k before chunk k + off.
  float2* cur = sm2;
  float2* nxt = sm2 + K * E;
  cur[k * E + x] = make_float2(C, D);
  __syncthreads();
  for (int off = 1; off < K; off <<= 1) {
    if (k + off < K) {
      const float2 o = cur[(k + off) * E + x];
      D = D + C * o.y;
      C = C * o.x;
    }
    nxt[k * E + x] = make_float2(C, D);
    __syncthreads();
    float2* t = cur; cur = nxt; nxt = t;
  }
  float A = k + 1 < K ? cur[(k + 1) * E + x].y : 0.0f;
  double s1 = 0.0, s2 = 0.0;
#pragma unroll
  for (int s = LC - 1; s >= 0; --s) {
    A = dl[s] + cf[s] * A;
    dl[s] = A;  // the advantages stay in registers for the normalised write
    const int64_t t = t0 + s;
    if (active && t < a.t) {
      const int64_t i = t * a.n + j;
      if (!a.normalize) a.adv[i] = A;
      if (a.ret) a.ret[i] = A + vv[s];
      s1 += A;
      s2 += static_cast<double>(A) * A;
    }
  }
  if (!a.normalize) return;
  DSums<2> acc = block_sum_any<2>(DSums<2>{{s1, s2}});
  const int tid = block_tid();
  if (tid == 0) {
    a.partials[2 * blockIdx.x] = acc.v[0];
    a.partials[2 * blockIdx.x + 1] = acc.v[1];
  }
  if (grid_arrive(a.counter, a.counter + 1, a.counter + 2, gridDim.x)) {
    const DSums<2> tot = sum_partials<2>(a.partials, gridDim.x);
    if (tid == 0) {
      const double cnt = static_cast<double>(a.t) * static_cast<double>(a.n);
      const double mean = tot.v[0] / cnt;
      double var = (tot.v[1] - cnt * mean * mean) / (cnt - 1.0);
      var = var > 0.0 ? var : 0.0;
      a.norm_stats[0] = static_cast<float>(mean);
      a.norm_stats[1] = static_cast<float>(sqrt(var));
      grid_release(a.counter, a.counter + 1, gridDim.x);
    }
    __syncthreads();
  }
  // Same float operations as normalize_kernel.
  const float mean = __ldcg(a.norm_stats), inv = 1.0f / (__ldcg(a.norm_stats + 1) + a.eps);
#pragma unroll
  for (int s = 0; s < LC; ++s) {
    const int64_t t = t0 + s;
    if (active && t < a.t) a.adv[t * a.n + j] = (dl[s] - mean) * inv;
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

// Shape of the register scan: LC steps per thread, K (a power of two) chunks per environment, E environments per
// block; false when T is too long for one block per environment group.
struct ScanShape { int lc, k, e; };
bool pick_scan(int64_t t, int64_t n, int sms, ScanShape& sh) {
  const int64_t m = t * n;
  // Short chunks when the rollout is small (latency: the dependent chain is LC steps long), longer ones when it
  // is large (fewer threads, the same bytes in flight).
  // Chunks of 4 only while they need at most 128 of them (T <= 512): each doubling of K adds a scan round (a
  // block barrier over up to 1024 threads), which costs more than 4 more steps of the chain. On the H200,
  // 1024x512 with 256 chunks of 4 (blocks of 1024 threads) took 10.3 us, 1024x1024 with 128 chunks of 8 9.8 us.
  int lc = m <= (int64_t(512) << 10) && t <= 512 ? 4 : (m <= (int64_t(2) << 20) ? 8 : 16);
  const int e_min = std::min<int>(4, next_pow2(n));  // 16-byte segments of a time row at least
  for (; lc <= 16; lc *= 2) {
    if (static_cast<int64_t>(next_pow2((t + lc - 1) / lc)) * e_min <= scan_max_threads(lc)) break;
  }
  if (lc > 16) return false;
  const int k = next_pow2((t + lc - 1) / lc);
  int e = std::min<int>(next_pow2(n), std::max(8, 256 / k));  // 8 envs = one 32-byte sector of a time row
  while (e > 1 && e * k > scan_max_threads(lc)) e >>= 1;
  // Few environments (long T, small N, e.g. 2048x16: 4 blocks of 1024 threads, 11.8 us on the H200): fewer per
  // block, so that more SMs share the loads and the scan; each block's issue slots, not bandwidth, bound it.
  while (e > 1 && (n + e - 1) / e < sms / 2 && (e / 2) * k >= 32) e >>= 1;
  if (e * k < 32) e = 32 / k;  // whole warps: the block reductions shuffle with a full mask
  sh = ScanShape{lc, k, e};
  return true;
}

// algo 0 (auto) takes the register scan up to 8M elements; beyond, the older schedules (one thread per
// environment for large N).
bool use_scan(int64_t t, int64_t n, int algo, ScanShape& sh) {
  if (algo != 3 && (algo != 0 || t * n > (int64_t(8) << 20))) return false;
  return pick_scan(t, n, device_sm_count(), sh);
}

template <int LC>
int scan_resident(int threads) {
  static int cache[11] = {0};  // by log2(threads)
  int lg = 0;
  while ((1 << lg) < threads) ++lg;
  if (cache[lg] == 0) {
    int b = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, gae_scan_kernel<LC>, threads, 2 * sizeof(float2) * threads) !=
        cudaSuccess) {
      cudaGetLastError();
      b = 0;
    }
    cache[lg] = b > 0 ? b : -1;
  }
  return cache[lg] > 0 ? cache[lg] : 0;
}

// One launch of a GAE kernel with `blocks` blocks. Normalising passes get the stream workspace (`counters`
// counters and one record of two doubles per block); `cooperative`: every block resident (grid barrier).
void launch_gae(void (*kernel)(GaeArgs), GaeArgs a, int64_t blocks, dim3 block, size_t smem, size_t counters,
                bool cooperative, cudaStream_t stream, const char* name) {
  SA2VA_CHECK_ARG(blocks <= INT_MAX, "gae_cuda: too many environments (", a.n, ")");
  if (a.normalize) {
    StreamWorkspace ws = stream_workspace(stream, counters, static_cast<size_t>(blocks) * 2 * sizeof(double));
    a.counter = ws.counters;
    a.partials = static_cast<double*>(ws.scratch);
  }
  const dim3 grid(static_cast<unsigned>(blocks));
#ifdef SA2VA_CUDA_EMULATION
  (void)stream;
  ::emu::launch(grid, block, kernel, smem, cooperative)(a);
#else
  if (cooperative) {
    void* args[] = {&a};
    SA2VA_CUDA_CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(kernel), grid, block, args, smem, stream));
  } else {
    kernel<<<grid, block, smem, stream>>>(a);
  }
#endif
  SA2VA_CUDA_CHECK_LAUNCH(name);
}

// Launches the register scan; false (nothing launched) when normalising needs more blocks than fit at once.
template <int LC>
bool launch_scan(const GaeArgs& a, const ScanShape& sh, cudaStream_t stream) {
  const int threads = sh.e * sh.k;
  const int64_t blocks = (a.n + sh.e - 1) / sh.e;
  if (a.normalize && blocks > static_cast<int64_t>(device_sm_count()) * scan_resident<LC>(threads)) return false;
  // normalising: the cooperative grid barrier's three counters (arrivals, release flag, departures)
  launch_gae(gae_scan_kernel<LC>, a, blocks, dim3(sh.e, sh.k), 2 * sizeof(float2) * threads, 3, a.normalize, stream,
             "gae_scan_kernel");
  return true;
}

bool try_scan(const GaeArgs& a, const ScanShape& sh, cudaStream_t stream) {
  switch (sh.lc) {
    case 4: return launch_scan<4>(a, sh, stream);
    case 8: return launch_scan<8>(a, sh, stream);
    default: return launch_scan<16>(a, sh, stream);
  }
}

}  // namespace

int gae_cuda_chunks(int64_t t, int64_t n, int algo) {
  ScanShape sh{};
  if (use_scan(t, n, algo, sh)) return sh.k;
  return pick_chunks(t, n, algo == 3 ? 2 : algo, algo == 0 ? device_sm_count() : 1);
}

void gae_cuda(const float* rewards, const float* values, const void* terminated, int term_dtype, const void* truncated,
              int trunc_dtype, const float* trunc_values, const float* bootstrap, int64_t t, int64_t n, float gamma,
              float lambda, float eps, float* adv, float* ret, float* norm_stats, int algo, cudaStream_t stream) {
  check_gae_args("gae_cuda", rewards, values, terminated, term_dtype, truncated, trunc_dtype, trunc_values, t, n, gamma,
                 lambda, eps, adv, norm_stats);
  SA2VA_CHECK_ARG(algo >= 0 && algo <= 3,
                  "gae_cuda: algo must be 0 (auto), 1 (per environment), 2 (chunked) or 3 (register scan)");
  const GaeArgs a{rewards, values, terminated, term_dtype, truncated, trunc_dtype, trunc_values, bootstrap, t, n, gamma,
                  lambda, adv, ret, norm_stats != nullptr, eps, nullptr, nullptr, norm_stats};
  ScanShape sh{};
  if (use_scan(t, n, algo, sh) && (int64_t(n) + sh.e - 1) / sh.e <= INT_MAX && try_scan(a, sh, stream)) return;
  // The two-pass schedules (and the register scan's fallback when normalising a grid too large to be resident).
  if (algo == 3) algo = 2;
  const int K = pick_chunks(t, n, algo, device_sm_count());
  // Blocks of ~256 threads, so that even 1M elements spread over most SMs; with K = 1, 256 environments.
  int E = K == 1 ? std::min(256, std::max(32, next_pow2(n)))
                 : static_cast<int>(std::min<int64_t>(next_pow2(n), std::max(1, 256 / K)));
  if (E * K < 32) E = 32 / K;  // whole warps: the reductions shuffle with a full mask
  launch_gae(gae_kernel, a, (n + E - 1) / E, dim3(E, K), K > 1 ? 2 * sizeof(float) * K * E : 0, 1, false, stream,
             "gae_kernel");
  if (norm_stats) {
    const int64_t m = t * n;
    const int64_t nb = std::min<int64_t>((m + 255) / 256, static_cast<int64_t>(device_sm_count()) * 8);
    SA2VA_LAUNCH(static_cast<unsigned>(nb), 256, stream, normalize_kernel)(adv, m, norm_stats, eps);
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
