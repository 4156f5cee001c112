// Block-wide sums in a fixed order (deterministic) and the "last block" handshake used with
// StreamWorkspace (workspace.h): one launch computes partials per block and a per-group epilogue.
#pragma once
#include <cuda_runtime.h>

namespace sa2va {

template <int K>
struct DSums {
  double v[K];
};

// Sum over the warp, in every lane: butterfly exchanges (lane i adds lane i ^ off). Floating-point addition is
// commutative, so every lane ends with the same value, the one a shuffle-down tree leaves in lane 0.
template <int K>
__device__ __forceinline__ void warp_sum(DSums<K>& a) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
#ifdef SA2VA_CUDA_EMULATION
    // the same sums, with one exchange of the whole struct per step (each emulated shuffle switches fibers)
    const DSums<K> o = emu_shfl_xor_struct(a, off);
    for (int k = 0; k < K; ++k) a.v[k] += o.v[k];
#else
#pragma unroll
    for (int k = 0; k < K; ++k) a.v[k] += __shfl_xor_sync(0xffffffffu, a.v[k], off);
#endif
  }
}

// Sum over the block; the result is valid in thread 0. Every thread of the block must call it.
template <int K, int THREADS>
__device__ __forceinline__ DSums<K> block_sum(DSums<K> a) {
  static_assert(THREADS % 32 == 0 && THREADS <= 1024, "block size");
  __shared__ DSums<K> s[THREADS / 32];
  warp_sum(a);
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
  if (l == 0) s[w] = a;
  __syncthreads();
  if (w == 0) {
    if (l < THREADS / 32) {
      a = s[l];
    } else {
#pragma unroll
      for (int k = 0; k < K; ++k) a.v[k] = 0.0;
    }
    warp_sum(a);
  }
  __syncthreads();  // s may be reused by the next call
  return a;
}

// Linear thread index in the block, for any block shape.
__device__ __forceinline__ int block_tid() {
  return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}

// block_sum for blocks of any shape and size (whole warps, at most 1024 threads); valid in thread 0.
template <int K>
__device__ __forceinline__ DSums<K> block_sum_any(DSums<K> a) {
  __shared__ DSums<K> s[32];
  const int tid = block_tid();
  const int warps = (blockDim.x * blockDim.y * blockDim.z + 31) / 32;
  warp_sum(a);
  if ((tid & 31) == 0) s[tid >> 5] = a;
  __syncthreads();
  if (tid < 32) {
    if (tid < warps) {
      a = s[tid];
    } else {
#pragma unroll
      for (int k = 0; k < K; ++k) a.v[k] = 0.0;
    }
    warp_sum(a);
  }
  __syncthreads();
  return a;
}

// Sum of `count` partial records of K doubles (record b at partials + b * K) by the whole block, in a fixed
// order; valid in thread 0. Used by the last block: one thread walking thousands of records would take
// hundreds of microseconds of dependent L2 loads.
template <int K>
__device__ __forceinline__ DSums<K> sum_partials(const double* partials, unsigned count) {
  DSums<K> t;
#pragma unroll
  for (int k = 0; k < K; ++k) t.v[k] = 0.0;
  const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
  for (unsigned b = block_tid(); b < count; b += threads) {
#pragma unroll
    for (int k = 0; k < K; ++k) t.v[k] += __ldcg(partials + static_cast<size_t>(b) * K + k);
  }
  return block_sum_any<K>(t);
}

// Called by every thread after this block's partial was stored: by thread 0, or by any threads followed by a
// __syncthreads(). True (in all threads) for the block that arrives last among `expected`; that block then sees every
// other block's partial. Resetting the counter is the caller's job (thread 0 of the last block, after reading).
// The arrival is one acquire-release atomic in thread 0: its release half publishes the block's stores (ordered
// before it by the barrier), its acquire half makes the last block see everyone's; cumulativity through the barriers
// carries both to the other threads, as in cooperative groups' grid sync. Two sequentially consistent fences
// (__threadfence) around a relaxed atomic did the same and cost 0.2-0.4 us more per call on the H200
// (benchmarks/RESULTS.md, "Session 7").
__device__ __forceinline__ bool last_block_arrive(unsigned* counter, unsigned expected) {
  __shared__ bool s_last;
  if (block_tid() == 0) {
#ifdef SA2VA_CUDA_EMULATION
    s_last = atomicAdd(counter, 1u) == expected - 1;
#else
    unsigned old;
    asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;" : "=r"(old) : "l"(counter) : "memory");
    s_last = old == expected - 1;
#endif
  }
  __syncthreads();
  return s_last;
}

// Grid-wide barrier with a "last block" step, for COOPERATIVE launches only (every block resident, else it
// deadlocks). Every thread of every block calls it after the block stored its partial. Returns true in all
// threads of the block that arrived last: it sees every partial, writes the totals, then thread 0 calls
// grid_release. The other blocks wait for the release, return false and then see the totals (read them with
// __ldcg: L1 is not coherent). Three workspace counters, all zero again when the kernel ends (the stream's
// other kernels expect zeros): arrivals (reset by the releasing block), the release flag, and departures (the
// last block to leave the wait resets departures and the flag; every waiter has seen the flag by then).
__device__ __forceinline__ bool grid_arrive(unsigned* arrive, unsigned* flag, unsigned* depart, unsigned expected) {
  __shared__ bool s_last;
  // Every thread's earlier global writes (not only thread 0's partial) must be visible to the other blocks.
  __threadfence();
  __syncthreads();
  if (block_tid() == 0) s_last = atomicAdd(arrive, 1u) == expected - 1;
  __syncthreads();
  if (s_last) {
    __threadfence();
    return true;
  }
  if (block_tid() == 0) {
    while (*reinterpret_cast<volatile unsigned*>(flag) == 0u) __nanosleep(64);
    __threadfence();
    if (atomicAdd(depart, 1u) == expected - 2) {
      *depart = 0u;
      *reinterpret_cast<volatile unsigned*>(flag) = 0u;
    }
  }
  __syncthreads();
  return false;
}

// Thread 0 of the last block of grid_arrive, after writing the totals.
__device__ __forceinline__ void grid_release(unsigned* arrive, unsigned* flag, unsigned expected) {
  *arrive = 0u;
  __threadfence();
  if (expected > 1) atomicExch(flag, 1u);
}

// Loads that bypass L1, for partials written by other blocks.
__device__ __forceinline__ double load_cg(const double* p) { return __ldcg(p); }

}  // namespace sa2va
