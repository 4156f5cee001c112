// CUDA implementation of GAE (see gae.h for the recurrence and the schedules).
//
// Register scan (gae_scan_kernel, the default up to 8M elements): see the comment at the kernel.
// Warp scan (gae_warp_kernel, the default for T >= 1024 and N <= 16): see the comment at the kernel.
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
#include "../common/pdl.cuh"
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
  pdl_wait_and_release();  // see pdl.cuh (a no-op in cooperative launches, which have no PDL attribute)
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

// Normalisation of the one-launch scans (cooperative launch): the block's sums of A and A^2 meet the other
// blocks' at a grid barrier, the last block writes {mean, std}; every thread gets {mean, 1 / (std + eps)}, the
// same float operations as normalize_kernel. Every thread of every block must call it.
__device__ __forceinline__ float2 grid_norm_stats(const GaeArgs& a, double s1, double s2) {
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
  return make_float2(__ldcg(a.norm_stats), 1.0f / (__ldcg(a.norm_stats + 1) + a.eps));
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
  pdl_wait_and_release();  // see pdl.cuh (a no-op in cooperative launches, which have no PDL attribute)
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
  const float2 mi = grid_norm_stats(a, s1, s2);
  const float mean = mi.x, inv = mi.y;
#pragma unroll
  for (int s = 0; s < LC; ++s) {
    const int64_t t = t0 + s;
    if (active && t < a.t) a.adv[t * a.n + j] = (dl[s] - mean) * inv;
  }
}

// ---- warp scan (long T, few environments) --------------------------------------------------------------------
// Block = one environment, W warps; warp w covers the steps [w S, (w + 1) S), S = 32 LC, as LC strips of 32
// consecutive steps: lane l holds step t = w S + 32 s + l of strip s. Why not chunks per thread as above: with
// N <= 16 a time row is at most 64 bytes, so a warp load of one step per lane on consecutive steps touches 16
// lines (4 for uint8 flags), one on steps LC apart 32; and the register scan at small N is bound by those
// load/store instructions (wavefronts per SM), not by bandwidth. Its log2 K block barriers go too:
//   1. every lane turns its LC steps into maps f_t(A) = delta_t + c_t A; V[t+1] comes from the next lane
//      (for lane 31, lane 0 of the next strip): one shuffle, no second load;
//   2. per strip, an inclusive suffix scan over the lanes by shuffles (5 steps, the LC strips interleaved):
//      lane l gets F_{s,l} = f_t o f_{t+1} o ... o f_{last of the strip}, (C, D) o (C', D') = (C C', D + C D');
//      lane 0's is the strip's map G_s, broadcast to the warp; the warp's map is G_0 o G_1 o ... o G_{LC-1};
//   3. one exchange of the W warp maps in shared memory (one barrier): each warp composes the maps of the warps
//      after it (the same suffix scan over lanes, lane l holding warp l's map), whose D is the A after its
//      segment (A_T = 0);
//   4. walking the strips back from that A: A_t = F_{s,l}(A_in), then A_in = G_s(A_in) for strip s - 1.
// Every input is read once and the outputs are written from registers; normalisation as in gae_scan_kernel.
struct Aff {
  float c, d;  // A -> d + c A
};

// a o b: b's steps come after a's
__device__ __forceinline__ Aff compose(Aff a, Aff b) { return Aff{a.c * b.c, a.d + a.c * b.d}; }

// The maps (or values) of all LC strips of a lane, moved by one call of the shuffles below.
template <int N>
struct Affs {
  Aff v[N];
};
template <int N>
struct Floats {
  float v[N];
};

// From lane src (shfl), or from lane + off (shfl_down; own values past lane 31), for all strips at once.
// The emulation moves the whole struct in one exchange (each emulated shuffle switches fibers).
#ifdef SA2VA_CUDA_EMULATION
template <typename T>
T shfl(const T& x, int src) {
  T r;
  ::emu::shuffle_bytes(&x, &r, sizeof(T), src);
  return r;
}
template <typename T>
T shfl_down(const T& x, int off) {
  return emu_shfl_down_struct(x, off);
}
#else
template <int N>
__device__ __forceinline__ Floats<N> shfl(const Floats<N>& x, int src) {
  Floats<N> r;
#pragma unroll
  for (int s = 0; s < N; ++s) r.v[s] = __shfl_sync(0xffffffffu, x.v[s], src);
  return r;
}
template <int N>
__device__ __forceinline__ Affs<N> shfl(const Affs<N>& x, int src) {
  Affs<N> r;
#pragma unroll
  for (int s = 0; s < N; ++s) {
    r.v[s].c = __shfl_sync(0xffffffffu, x.v[s].c, src);
    r.v[s].d = __shfl_sync(0xffffffffu, x.v[s].d, src);
  }
  return r;
}
template <int N>
__device__ __forceinline__ Affs<N> shfl_down(const Affs<N>& x, int off) {
  Affs<N> r;
#pragma unroll
  for (int s = 0; s < N; ++s) {
    r.v[s].c = __shfl_down_sync(0xffffffffu, x.v[s].c, off);
    r.v[s].d = __shfl_down_sync(0xffffffffu, x.v[s].d, off);
  }
  return r;
}
#endif

// Inclusive suffix scan over the lanes (Hillis-Steele, 5 shuffle steps), of N independent sequences at once:
// lane l gets x_l o x_{l+1} o ... o x_31.
template <int N>
__device__ __forceinline__ void warp_suffix_scan(Affs<N>& x, int lane) {
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const Affs<N> o = shfl_down(x, off);
    if (lane + off < 32) {
#pragma unroll
      for (int s = 0; s < N; ++s) x.v[s] = compose(x.v[s], o.v[s]);
    }
  }
}

constexpr int kWarpScanMaxWarps = 16;

template <int LC>
__global__ void __launch_bounds__(32 * kWarpScanMaxWarps, 1) gae_warp_kernel(const GaeArgs a) {
  pdl_wait_and_release();  // see pdl.cuh (a no-op in cooperative launches, which have no PDL attribute)
  __shared__ Aff seg[kWarpScanMaxWarps];
  const int lane = threadIdx.x, w = threadIdx.y, W = blockDim.y;
  const int64_t j = blockIdx.x;
  const int64_t t0 = static_cast<int64_t>(w) * 32 * LC + lane;  // this lane's step of strip 0
  float vv[LC];
  Affs<LC> F;  // F.v[s]: this lane's map of strip s
  {
    float rr[LC], tv[LC];
    bool te[LC], tr[LC];
#pragma unroll
    for (int s = 0; s < LC; ++s) {
      const int64_t t = t0 + 32 * s;
      rr[s] = 0.0f; vv[s] = 0.0f; tv[s] = 0.0f; te[s] = false; tr[s] = false;
      if (t < a.t) {
        const int64_t i = t * a.n + j;
        rr[s] = __ldg(a.r + i);
        vv[s] = __ldg(a.v + i);
        te[s] = flag_at(a.term, a.term_dtype, i);
        if (a.trunc) {
          tr[s] = flag_at(a.trunc, a.trunc_dtype, i);
          tv[s] = __ldg(a.tv + i);  // unconditional, used through a select (as in gae_scan_kernel)
        }
      }
    }
    const int64_t t_after = static_cast<int64_t>(w + 1) * 32 * LC;  // first step of the next warp's segment
    const float v_after = lane == 0 && t_after < a.t ? __ldg(a.v + t_after * a.n + j) : 0.0f;
    const float boot = a.boot ? __ldg(a.boot + j) : 0.0f;
    // V[t+1]: lane l reads lane l + 1's V of the same strip; lane 31 reads lane 0's offer, the V of the next
    // strip's first step (of the next segment's after the last strip).
    Floats<LC> offer;
#pragma unroll
    for (int s = 0; s < LC; ++s) offer.v[s] = lane == 0 ? (s + 1 < LC ? vv[s + 1] : v_after) : vv[s];
    const Floats<LC> nv = shfl(offer, (lane + 1) & 31);
#pragma unroll
    for (int s = 0; s < LC; ++s) {
      const int64_t t = t0 + 32 * s;
      if (t < a.t) {
        const GaeStep st = gae_step(rr[s], vv[s], t + 1 < a.t ? nv.v[s] : boot, te[s], tr[s], tv[s], a.gamma,
                                    a.lambda);
        F.v[s] = Aff{st.c, st.delta};
      } else {
        F.v[s] = Aff{1.0f, 0.0f};  // identity: steps past T pass A through
      }
    }
  }
  warp_suffix_scan(F, lane);
  const Affs<LC> G = shfl(F, 0);  // the strips' maps
  if (lane == 0) {
    Aff m = G.v[LC - 1];
#pragma unroll
    for (int s = LC - 2; s >= 0; --s) m = compose(G.v[s], m);
    seg[w] = m;
  }
  __syncthreads();
  Affs<1> x{{lane > w && lane < W ? seg[lane] : Aff{1.0f, 0.0f}}};
  warp_suffix_scan(x, lane);
  float A_in = shfl(x, 0).v[0].d;  // the A after this warp's segment
  double s1 = 0.0, s2 = 0.0;
#pragma unroll
  for (int s = LC - 1; s >= 0; --s) {
    const float A = F.v[s].d + F.v[s].c * A_in;
    A_in = G.v[s].d + G.v[s].c * A_in;
    F.v[s].d = A;  // kept for the normalised write
    const int64_t t = t0 + 32 * s;
    if (t < a.t) {
      const int64_t i = t * a.n + j;
      if (!a.normalize) a.adv[i] = A;
      if (a.ret) a.ret[i] = A + vv[s];
      s1 += A;
      s2 += static_cast<double>(A) * A;
    }
  }
  if (!a.normalize) return;
  const float2 mi = grid_norm_stats(a, s1, s2);
  const float mean = mi.x, inv = mi.y;
#pragma unroll
  for (int s = 0; s < LC; ++s) {
    const int64_t t = t0 + 32 * s;
    if (t < a.t) a.adv[t * a.n + j] = (F.v[s].d - mean) * inv;
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

// Warp scan: LC steps per lane, W warps per environment; false when T is too long for one block.
struct WarpShape { int lc, w; };
bool pick_warp(int64_t t, WarpShape& sh) {
  // The fewest steps per lane that fit: the most warps per SM to hide the loads behind, the shortest chains;
  // the load instructions per environment are the same for any LC.
  for (int lc = 4; lc <= 16; lc *= 2) {
    const int64_t w = (t + 32 * lc - 1) / (32 * lc);
    if (w <= kWarpScanMaxWarps) {
      sh = WarpShape{lc, static_cast<int>(w)};
      return true;
    }
  }
  return false;
}

// algo 4 forces the warp scan (where T fits); auto takes it for long rollouts of few environments, where a time
// row is at most 64 bytes (the register scan's loads touch twice the lines, see gae_warp_kernel). On the H200,
// 2048x16 took 10.25 us with the register scan (16 blocks of 256 threads).
bool use_warp(int64_t t, int64_t n, int algo, WarpShape& sh) {
  if (algo != 4 && (algo != 0 || n > 16 || t < 1024)) return false;
  return pick_warp(t, sh);
}

// Blocks of `kernel` resident per SM at `threads` threads (a power of two) and `smem` bytes of dynamic shared
// memory; 0 if the query fails.
template <void (*KERNEL)(GaeArgs)>
int resident(int threads, size_t smem) {
  static int cache[11] = {0};  // by log2(threads)
  int lg = 0;
  while ((1 << lg) < threads) ++lg;
  if (cache[lg] == 0) {
    int b = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, KERNEL, threads, smem) != cudaSuccess) {
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
    SA2VA_CUDA_CHECK(launch_pdl(kernel, grid, block, smem, stream, rl_pdl_enabled(), a));
  }
#endif
  SA2VA_CUDA_CHECK_LAUNCH(name);
}

// Launches the register scan; false (nothing launched) when normalising needs more blocks than fit at once.
template <int LC>
bool launch_scan(const GaeArgs& a, const ScanShape& sh, cudaStream_t stream) {
  const int threads = sh.e * sh.k;
  const int64_t blocks = (a.n + sh.e - 1) / sh.e;
  if (a.normalize &&
      blocks > static_cast<int64_t>(device_sm_count()) * resident<gae_scan_kernel<LC>>(threads, 2 * sizeof(float2) * threads))
    return false;
  // normalising: the cooperative grid barrier's three counters (arrivals, release flag, departures)
  launch_gae(gae_scan_kernel<LC>, a, blocks, dim3(sh.e, sh.k), 2 * sizeof(float2) * threads, 3, a.normalize, stream,
             "gae_scan_kernel");
  return true;
}

// Launches the warp scan; false (nothing launched) when normalising needs more blocks than fit at once.
template <int LC>
bool launch_warp(const GaeArgs& a, const WarpShape& sh, cudaStream_t stream) {
  const int threads = 32 * sh.w;
  // threads rounded up to a power of two for the query: never more blocks than fit
  if (a.normalize && a.n > static_cast<int64_t>(device_sm_count()) * resident<gae_warp_kernel<LC>>(next_pow2(threads), 0))
    return false;
  launch_gae(gae_warp_kernel<LC>, a, a.n, dim3(32, sh.w), 0, 3, a.normalize, stream, "gae_warp_kernel");
  return true;
}

bool try_warp(const GaeArgs& a, const WarpShape& sh, cudaStream_t stream) {
  switch (sh.lc) {
    case 4: return launch_warp<4>(a, sh, stream);
    case 8: return launch_warp<8>(a, sh, stream);
    default: return launch_warp<16>(a, sh, stream);
  }
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
  WarpShape wh{};
  if (use_warp(t, n, algo, wh)) return 32 * wh.w;  // lanes per environment
  if (algo == 4) algo = 3;
  ScanShape sh{};
  if (use_scan(t, n, algo, sh)) return sh.k;
  return pick_chunks(t, n, algo == 3 ? 2 : algo, algo == 0 ? device_sm_count() : 1);
}

void gae_cuda(const float* rewards, const float* values, const void* terminated, int term_dtype, const void* truncated,
              int trunc_dtype, const float* trunc_values, const float* bootstrap, int64_t t, int64_t n, float gamma,
              float lambda, float eps, float* adv, float* ret, float* norm_stats, int algo, cudaStream_t stream) {
  check_gae_args("gae_cuda", rewards, values, terminated, term_dtype, truncated, trunc_dtype, trunc_values, t, n, gamma,
                 lambda, eps, adv, norm_stats);
  SA2VA_CHECK_ARG(algo >= 0 && algo <= 4,
                  "gae_cuda: algo must be 0 (auto), 1 (per environment), 2 (chunked), 3 (register scan) or 4 (warp scan)");
  const GaeArgs a{rewards, values, terminated, term_dtype, truncated, trunc_dtype, trunc_values, bootstrap, t, n, gamma,
                  lambda, adv, ret, norm_stats != nullptr, eps, nullptr, nullptr, norm_stats};
  WarpShape wh{};
  if (use_warp(t, n, algo, wh) && n <= INT_MAX && try_warp(a, wh, stream)) return;
  if (algo == 4) algo = 3;  // T too long for one block, or a normalised grid too large to be resident
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
