// CUDA implementation of the LoRA kernels (lora.h): forward and backward side by side.
//
// Single adapter (training and inference): with dropout (bf16/fp16, r <= 128) the three products the mask touches
// are ours, on tensor cores: xs = s·drop(x)·Aᵀ and dA += s·dsᵀ·drop(x) in lowrank_kernel (the mask applied while x
// is copied to shared memory, so keep⊙x never reaches memory) and dx's term s·(ds·A)⊙keep in masked_expand_kernel
// (the mask in the epilogue). Everything else, and these without dropout, for fp32 or r > 128, are cuBLAS GEMMs
// (host side, below), with our elementwise kernels for what cuBLAS cannot do: dropout_apply_kernel (keep⊙x from
// the Philox rule of lora_dropout.h into the workspace, ⊙keep in place on dx) and bias_rows_kernel (the bias as y's
// start value). See "cuBLAS for the single-adapter products" below for why cuBLAS, and lowrank_kernel for why not
// everywhere.
//
// Multi-adapter inference (a per-row adapter index): two kernel templates of our own,
//   skinny_kernel:  acc[BM x RP] = P[BM x K] · Q[K x RP]   (K long, split over blocks)
//       xs  = drop(x)·Aᵀ per row's adapter, scaled per row      P = x rows,   Q = Aᵀ     -> rows out (dtype)
//   expand_kernel:  out[BM x BN] = epi(S[BM x r] · Q[r x BN])    (K = r, short)
//       y   = xs·Bᵀ + bias per row's adapter                      (the caller adds x·Wᵀ with cuBLAS, beta = 1)
// bf16/fp16 use tensor cores through WMMA (16x16x16, fp32 accumulators), fp32 CUDA-core FMAs (no TF32). The
// skinny product streams its operand through a 2-4 stage cp.async pipeline; long K is split over a second grid
// dimension and the last block of a tile to finish (atomic counter) adds the fp32 partials in split order, so
// results are deterministic. (The kernel template is general in its operand layouts; the single-adapter backward
// used its other layouts before cuBLAS and lowrank_kernel took over.)
#include "lora.h"
#include "../common/errors.h"

#ifndef SA2VA_NO_CUDA
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_pipeline.h>
#include <mma.h>
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <climits>
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#include "../common/cuda_check.cuh"
#include "../common/pdl.cuh"
#include "../common/last_block.cuh"
#include "../common/workspace.h"
#include "lora_dropout.h"

namespace sa2va {
namespace {

using namespace nvcuda;

constexpr int kThreads = 256;  // 8 warps in every kernel

// Launch seam: the CPU emulation used by native/src/test/cpp (same source, fibers instead of threads) replaces it.
#ifndef SA2VA_LAUNCH
#define SA2VA_LAUNCH(grid, block, stream, ...) __VA_ARGS__<<<grid, block, 0, stream>>>
#endif

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <typename T> __device__ __forceinline__ T zero_of() { return from_f<T>(0.0f); }

// Elements per 16-byte vector.
template <typename T> constexpr int vec_of() { return 16 / static_cast<int>(sizeof(T)); }
template <typename T> constexpr bool is_16bit() { return sizeof(T) == 2; }
// Shared-memory row padding: 16 bytes, so rows stay 16-byte aligned for vector stores (and, for WMMA tiles, ldm stays
// a multiple of 8 elements with fragments 32-byte aligned).
template <typename T> constexpr int pad_of() { return vec_of<T>(); }

// 16 bytes as VEC elements; the union keeps the register array aligned for the vector access.
template <typename T>
union Vec16 {
  uint4 raw;
  T e[vec_of<T>()];
};

// Read-only operands (x, dY, A, B, xs, ds): through the non-coherent cache.
template <typename T>
__device__ __forceinline__ void load_vec(const T* p, T (&v)[vec_of<T>()]) {
  Vec16<T> u;
  u.raw = __ldg(reinterpret_cast<const uint4*>(p));
#pragma unroll
  for (int i = 0; i < vec_of<T>(); ++i) v[i] = u.e[i];
}

// Outputs this kernel also reads (accumulation): plain loads.
template <typename T>
__device__ __forceinline__ void load_vec_rw(const T* p, T (&v)[vec_of<T>()]) {
  Vec16<T> u;
  u.raw = *reinterpret_cast<const uint4*>(p);
#pragma unroll
  for (int i = 0; i < vec_of<T>(); ++i) v[i] = u.e[i];
}

template <typename T>
__device__ __forceinline__ void store_vec(T* p, const T (&v)[vec_of<T>()]) {
#ifdef SA2VA_CUDA_EMULATION
  emu::check_aligned(p, 16, "store_vec");
#endif
  Vec16<T> u;
#pragma unroll
  for (int i = 0; i < vec_of<T>(); ++i) u.e[i] = v[i];
  *reinterpret_cast<uint4*>(p) = u.raw;
}

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Programmatic dependent launch (sm_90+, common/pdl.cuh): every kernel here starts with pdl_wait_and_release(), so
// the next kernel's launch latency overlaps this kernel's tail instead of adding a gap (a few microseconds per
// launch, as much as a small LoRA kernel's work).

// Dropout keep bits for VEC consecutive flat indices starting at `first` (any alignment).
__device__ __forceinline__ uint32_t keep_bits(uint64_t seed, uint64_t offset, uint32_t p16, uint64_t first, int n) {
  if ((first & 7u) == 0 && n <= 8) return lora_keep_bits8(seed, offset, first >> 3, p16);  // one Philox block
  uint32_t out = 0;
  uint64_t group = first >> 3;
  uint32_t bits = lora_keep_bits8(seed, offset, group, p16);
  for (int i = 0; i < n; ++i) {
    const uint64_t idx = first + i;
    if ((idx >> 3) != group) { group = idx >> 3; bits = lora_keep_bits8(seed, offset, group, p16); }
    out |= ((bits >> (idx & 7)) & 1u) << i;
  }
  return out;
}

// ------------------------------------------------------------------------------------------------------------
// Tile products acc[BM x N] += P[BM x KC] · Q[KC x N] over shared memory, in two flavours with one interface.
// Operands are staged in whichever orientation their global layout gives for free (a transposing copy into shared
// memory would make 4-8 threads of a warp hit one bank: WMMA wants leading dimensions that are multiples of 8
// elements, so rows 8 apart share banks), and the tile reads them through the matching fragment layout:
//   P_COLS = false: Ps[i * ldp + k]  (row-major)     P_COLS = true: Ps[k * ldp + i]  (column-major)
//   Q_T    = false: Qs[k * ldq + j]  (row-major)     Q_T    = true: Qs[j * ldq + k]  (column-major)

template <bool COLS> struct LayoutOf { using type = wmma::row_major; };
template <> struct LayoutOf<true> { using type = wmma::col_major; };

// WMMA: warps tile the block's output; each warp holds NF_M x NF_N 16x16 fp32 accumulators.
template <typename T, int WARP_ROWS, int WARP_COLS, int NF_M, int NF_N>
struct WmmaTile {
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> c[NF_M][NF_N];
  int row0, col0;
  bool active;
  __device__ void init(int warps_m, int warps_n) {
    const int warp = threadIdx.x >> 5;
    active = warp < warps_m * warps_n;
    row0 = (warp % warps_m) * WARP_ROWS;
    col0 = (warp / warps_m) * WARP_COLS;
#pragma unroll
    for (int i = 0; i < NF_M; ++i)
#pragma unroll
      for (int j = 0; j < NF_N; ++j) wmma::fill_fragment(c[i][j], 0.0f);
  }
  template <int KC, bool P_COLS, bool Q_T>
  __device__ void mma(const T* Ps, int ldp, const T* Qs, int ldq) {
    if (!active) return;
    // not unrolled fully: with long chunks the compiler would hoist every fragment load of the chunk and spill
#pragma unroll 2
    for (int kk = 0; kk < KC; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, typename LayoutOf<P_COLS>::type> a[NF_M];
#pragma unroll
      for (int i = 0; i < NF_M; ++i) {
        const int r = row0 + 16 * i;
        wmma::load_matrix_sync(a[i], P_COLS ? Ps + kk * ldp + r : Ps + r * ldp + kk, ldp);
      }
#pragma unroll
      for (int j = 0; j < NF_N; ++j) {
        const int col = col0 + 16 * j;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, typename LayoutOf<Q_T>::type> b;
        wmma::load_matrix_sync(b, Q_T ? Qs + col * ldq + kk : Qs + kk * ldq + col, ldq);
#pragma unroll
        for (int i = 0; i < NF_M; ++i) wmma::mma_sync(c[i][j], a[i], b, c[i][j]);
      }
    }
  }
  // dst: fp32 row-major with leading dimension ld (shared or global; 32-byte aligned fragments).
  __device__ void store(float* dst, int ld) {
    if (!active) return;
#pragma unroll
    for (int i = 0; i < NF_M; ++i)
#pragma unroll
      for (int j = 0; j < NF_N; ++j)
        wmma::store_matrix_sync(dst + (row0 + 16 * i) * ld + col0 + 16 * j, c[i][j], ld, wmma::mem_row_major);
  }
};

// FMA (fp32): 256 threads as TR x TC; thread (r, c) owns rows r·MR .. r·MR+MR-1 and columns c, c+TC, ...
template <int TR, int TC, int MR, int NC>
struct FmaTile {
  float c[MR][NC];
  int tr, tc;
  __device__ void init(int, int) {
    tr = threadIdx.x / TC;
    tc = threadIdx.x % TC;
#pragma unroll
    for (int i = 0; i < MR; ++i)
#pragma unroll
      for (int j = 0; j < NC; ++j) c[i][j] = 0.0f;
  }
  template <int KC, bool P_COLS, bool Q_T>
  __device__ void mma(const float* Ps, int ldp, const float* Qs, int ldq) {
#pragma unroll 4
    for (int k = 0; k < KC; ++k) {
      float a[MR], b[NC];
#pragma unroll
      for (int i = 0; i < MR; ++i) {
        const int r = tr * MR + i;
        a[i] = P_COLS ? Ps[k * ldp + r] : Ps[r * ldp + k];
      }
#pragma unroll
      for (int j = 0; j < NC; ++j) {
        const int col = tc + TC * j;
        b[j] = Q_T ? Qs[col * ldq + k] : Qs[k * ldq + col];
      }
#pragma unroll
      for (int i = 0; i < MR; ++i)
#pragma unroll
        for (int j = 0; j < NC; ++j) c[i][j] = fmaf(a[i], b[j], c[i][j]);
    }
  }
  __device__ void store(float* dst, int ld) {
#pragma unroll
    for (int i = 0; i < MR; ++i)
#pragma unroll
      for (int j = 0; j < NC; ++j) dst[(tr * MR + i) * ld + tc + TC * j] = c[i][j];
  }
};

// One 16-byte vector of a staged operand, read from global memory: `count` valid elements starting at `src`
// (zeros after them). Whole vectors go through one aligned 16-byte load, through the read-only path unless RW
// (memory this kernel also writes).
template <bool RW = false, typename T>
__device__ __forceinline__ void fetch(const T* src, int count, bool vec_ok, T (&v)[vec_of<T>()]) {
  constexpr int VEC = vec_of<T>();
  if (count >= VEC && vec_ok) {
    if (RW) load_vec_rw(src, v);
    else load_vec(src, v);
  } else {
#pragma unroll
    for (int e = 0; e < VEC; ++e) v[e] = e < count ? src[e] : zero_of<T>();
  }
}

// ------------------------------------------------------------------------------------------------------------
// Adapters of a row tile. Single-adapter calls run one pass with every row active; multi-adapter calls run one
// pass per distinct adapter in the tile with the other rows' operand rows zeroed, so every row accumulates
// exactly its own adapter's product (a grouped batch needs one pass per tile).
template <int BM>
struct TileAdapters {
  int64_t id[BM];  // adapter of each row of the tile, -1 = none / outside the matrix
  int64_t next;    // adapter of the pass being set up, -1 = done
  __device__ void load(const int64_t* index, int64_t n_adapters, int64_t m0, int64_t M) {
    for (int i = threadIdx.x; i < BM; i += blockDim.x) {
      int64_t a = -1;
      if (index && m0 + i < M) {
        a = index[m0 + i];
        if (a < 0 || a >= n_adapters) a = -1;
      }
      id[i] = a;
    }
  }
  // Smallest adapter id greater than `prev` present in the tile (-1 if none). Call from all threads.
  __device__ int64_t advance(int64_t prev) {
    __syncthreads();
    if (threadIdx.x == 0) {
      int64_t best = -1;
      for (int i = 0; i < BM; ++i)
        if (id[i] > prev && (best < 0 || id[i] < best)) best = id[i];
      next = best;
    }
    __syncthreads();
    return next;
  }
};

// Σ over splits of p[sp·stride], in split order (deterministic). Unrolled by 4 so that four loads are in flight at
// once: this runs in the tail of every split product, where only the last block of a tile is still working.
__device__ __forceinline__ float sum_partials(const float* p, int64_t stride, int splits) {
  float sum = 0.0f;
  int sp = 0;
  for (; sp + 4 <= splits; sp += 4) {
    const float a0 = __ldcg(p + sp * stride), a1 = __ldcg(p + (sp + 1) * stride);
    const float a2 = __ldcg(p + (sp + 2) * stride), a3 = __ldcg(p + (sp + 3) * stride);
    sum += a0;
    sum += a1;
    sum += a2;
    sum += a3;
  }
  for (; sp < splits; ++sp) sum += __ldcg(p + sp * stride);
  return sum;
}

// ============================================================================================================
// skinny_kernel: acc[BM x RP] = P[BM x K] · Q[K x RP], K split over gridDim.y, then an epilogue.
//
//   P(i, k) = p[(m0+i)·p_ld + k]   (p_cols = false: rows of x or dY)
//           = p[k·p_ld + m0 + i]   (p_cols = true: Pᵀ is x or dY, i.e. a reduction over rows)
//   Q(k, j) = q[j·q_ld + k]        (q_t = true: Q = Aᵀ with A [r x K])
//           = q[k·q_ld + j]        (q_t = false: Q = B [K x r], xs or ds [rows x r])
//   dropout zeroes P elements whose flat index in p (the same index as in x) is dropped.
// Epilogue: out[t, j] = dtype(s_t · acc) (xs of the multi-adapter forward, the one product this kernel still runs;
// the gradient epilogues went with the single-adapter backward to cuBLAS and lowrank_kernel).

struct SkinnyArgs {
  const void* p;
  int64_t p_ld;
  bool p_cols;
  int64_t M, K;
  const void* q;
  int64_t q_ld;
  bool q_t;
  int64_t q_adapter_stride;
  int R;
  bool dropout;
  uint32_t p16;
  uint64_t seed, offset;
  const int64_t* adapter;
  int64_t n_adapters;
  const float* adapter_scale;
  float scale;
  int splits;
  int64_t k_per_split;
  int64_t m_tiles;
  float* partial;      // [splits][m_tiles·BM][RP]
  unsigned* counters;  // [m_tiles], zero on entry, left zero (common/workspace.h)
  void* out;
  int64_t out_ld;
  bool vec_p, vec_q;
};

constexpr int kSkBM = 64;

// The K loop is a cp.async pipeline of STAGES chunks of KC along K in shared memory: while the block multiplies
// chunk c, chunks c+1 .. c+STAGES-1 are on their way, without registers (cp.async copies global to shared memory
// directly). History: the first version kept one 4 KB chunk in flight per block through registers, and the H200
// profile (ncu, 4096 x 4096, r = 16) showed it at 42-76 µs for a 32 MB operand, DRAM at 10-17 %: latency-bound
// (Little's law wants ~4-5 MB in flight for HBM at ~1 µs; it had ~1.3 MB).
//
// (KC, STAGES): the most operand bytes in flight, (STAGES-1)·KC, whose stages fit 46 KB of static shared memory.
constexpr int kSkSmem = 46 * 1024;
constexpr int skinny_tile_bytes(int esize, int rp, bool p_cols, bool q_t, int kc) {
  const int pad = 16 / esize;
  const int p = p_cols ? kc * (kSkBM + pad) : kSkBM * (kc + pad);
  const int q = q_t ? rp * (kc + pad) : kc * (rp + pad);
  return (p + q) * esize;
}
// encoded as kc * 8 + stages
constexpr int skinny_pipe(int esize, int rp, bool p_cols, bool q_t) {
  int best = 16 * 8 + 2, best_flight = 0;
  // 16-bit types need multiples of 16 (the WMMA k); fp32 (FMA tiles) goes down to 8 for r = 256 with A's rows
  for (int kc = 128; kc >= (esize == 4 ? 8 : 16); kc /= 2)
    for (int st = 4; st >= 2; --st)
      // on a tie the smaller chunk with more stages: more, smaller requests keep the pipeline fuller
      if (st * skinny_tile_bytes(esize, rp, p_cols, q_t, kc) <= kSkSmem && (st - 1) * kc >= best_flight) {
        best = kc * 8 + st;
        best_flight = (st - 1) * kc;
      }
  return best;
}
constexpr int skinny_kc(int esize, int rp, bool p_cols, bool q_t) { return skinny_pipe(esize, rp, p_cols, q_t) / 8; }
constexpr int skinny_stages(int esize, int rp, bool p_cols, bool q_t) { return skinny_pipe(esize, rp, p_cols, q_t) % 8; }

template <typename T, int RP>
struct SkinnyTile;
template <int RP>
struct SkinnyTile<float, RP> {
  static constexpr int WN = 1;
  using type = FmaTile<16, 16, kSkBM / 16, RP / 16>;  // 16 x 16 threads, 4 rows x RP/16 columns each
};
template <typename T, int RP>
struct SkinnyTile {
  // 4 warps down the 64 rows, up to 2 across the RP columns.
  static constexpr int WN = RP >= 32 ? 2 : 1;
  using type = WmmaTile<T, 16, RP / WN, 1, RP / 16 / WN>;
};

// Blocks per SM the register budget must allow: with the operands staged by cp.async, registers hold little more
// than the accumulators, and more resident blocks mean more bytes in flight (the stages of up to four blocks fit the
// 228 KB of shared memory).
// The column-operand instances (dA, dB) keep more 64-bit addressing live and spilled at 64 registers: three for them.
constexpr int skinny_blocks_per_sm(int rp, bool p_cols) { return rp <= 32 ? (p_cols ? 3 : 4) : rp == 64 ? 3 : rp == 128 ? 2 : 1; }
template <int RP, bool P_COLS> constexpr int skinny_min_blocks() { return skinny_blocks_per_sm(RP, P_COLS); }

template <typename T, int RP, bool P_COLS, bool Q_T>
__global__ void __launch_bounds__(kThreads, skinny_min_blocks<RP, P_COLS>()) skinny_kernel(const SkinnyArgs a) {
  constexpr int ES = static_cast<int>(sizeof(T));
  constexpr int BM = kSkBM, KC = skinny_kc(ES, RP, P_COLS, Q_T), STAGES = skinny_stages(ES, RP, P_COLS, Q_T);
  constexpr int VEC = vec_of<T>(), PAD = pad_of<T>();
  constexpr int LDP = P_COLS ? BM + PAD : KC + PAD, P_ROWS = P_COLS ? KC : BM;
  constexpr int LDQ = Q_T ? KC + PAD : RP + PAD, Q_ROWS = Q_T ? RP : KC;
  constexpr int P_SIZE = P_ROWS * LDP, Q_SIZE = Q_ROWS * LDQ;
  constexpr int P_VECS = BM * KC / VEC, P_IT = (P_VECS + kThreads - 1) / kThreads;
  constexpr int Q_VECS = RP * KC / VEC, Q_IT = (Q_VECS + kThreads - 1) / kThreads;
  static_assert(STAGES * (P_SIZE + Q_SIZE) * ES <= kSkSmem, "skinny_kernel: stages exceed the shared-memory budget");
  __shared__ __align__(128) T Ps[STAGES * P_SIZE];
  __shared__ __align__(128) T Qs[STAGES * Q_SIZE];
  __shared__ TileAdapters<BM> ad;

  pdl_wait_and_release();
  const int64_t tile = blockIdx.x;
  const int split = blockIdx.y;
  const int64_t m0 = tile * BM;
  const int64_t k_begin = split * a.k_per_split;
  const int64_t k_end = min64(a.K, k_begin + a.k_per_split);
  const int n_chunks = k_begin < k_end ? static_cast<int>((k_end - k_begin + KC - 1) / KC) : 0;
  const T* __restrict__ P = static_cast<const T*>(a.p);

  typename SkinnyTile<T, RP>::type acc;
  acc.init(4, SkinnyTile<T, RP>::WN);
  ad.load(a.adapter, a.n_adapters, m0, a.M);

  // Vector v of a chunk: P runs along its contiguous dimension (k for rows of p, i for columns of p),
  // Q along k (Q_T: rows of A) or along j.
  auto p_coords = [](int v, int& i, int& kk) {
    if (P_COLS) { kk = v / (BM / VEC); i = (v % (BM / VEC)) * VEC; }
    else { i = v / (KC / VEC); kk = (v % (KC / VEC)) * VEC; }
  };
  auto q_coords = [](int v, int& j, int& kk) {
    if (Q_T) { j = v / (KC / VEC); kk = (v % (KC / VEC)) * VEC; }
    else { kk = v / (RP / VEC); j = (v % (RP / VEC)) * VEC; }
  };
  // One 16-byte vector into shared memory: whole aligned vectors by cp.async, tails and unaligned operands through
  // registers (synchronous), vectors outside the operand as zeros.
  auto put = [](T* dst, const T* src, int count, bool vec_ok) {
    if (count >= VEC && vec_ok) {
      __pipeline_memcpy_async(dst, src, 16);
    } else {
      T v[VEC];
#pragma unroll
      for (int e = 0; e < VEC; ++e) v[e] = e < count ? src[e] : zero_of<T>();
      store_vec(dst, v);
    }
  };

  int64_t pass = a.adapter ? ad.advance(-1) : 0;
  while (pass >= 0) {
    const T* __restrict__ Q = static_cast<const T*>(a.q) + (a.adapter ? pass * a.q_adapter_stride : 0);
    // starts the copies of chunk c into stage c % STAGES
    auto issue = [&](int c) {
      const int64_t k0 = k_begin + static_cast<int64_t>(c) * KC;
      T* ps = Ps + (c % STAGES) * P_SIZE;
      T* qs = Qs + (c % STAGES) * Q_SIZE;
#pragma unroll
      for (int it = 0; it < P_IT; ++it) {
        const int v = threadIdx.x + it * kThreads;
        if (v >= P_VECS) continue;
        int i, kk;
        p_coords(v, i, kk);
        const int64_t row = m0 + i, col = k0 + kk;
        int count = 0;
        int64_t first = 0;
        if (P_COLS) {
          first = col * a.p_ld + row;
          if (col < k_end) count = static_cast<int>(min64(VEC, a.M - row));
        } else {
          first = row * a.p_ld + col;
          if (row < a.M && (!a.adapter || ad.id[i] == pass)) count = static_cast<int>(min64(VEC, k_end - col));
        }
        if (count <= 0) first = 0;
        put(ps + (P_COLS ? kk * LDP + i : i * LDP + kk), P + first, count < 0 ? 0 : count, a.vec_p);
      }
#pragma unroll
      for (int it = 0; it < Q_IT; ++it) {
        const int v = threadIdx.x + it * kThreads;
        if (v >= Q_VECS) continue;
        int j, kk;
        q_coords(v, j, kk);
        const int64_t col = k0 + kk;
        int count = 0;
        int64_t first = 0;
        if (Q_T) {
          first = static_cast<int64_t>(j) * a.q_ld + col;
          if (j < a.R) count = static_cast<int>(min64(VEC, k_end - col));
        } else {
          first = col * a.q_ld + j;
          if (col < k_end) count = static_cast<int>(min64(VEC, static_cast<int64_t>(a.R) - j));
        }
        if (count <= 0) first = 0;
        put(qs + (Q_T ? j * LDQ + kk : kk * LDQ + j), Q + first, count < 0 ? 0 : count, a.vec_q);
      }
    };
    // dropout on this thread's own P vectors of chunk c, once its copies have landed (before the barrier that
    // publishes them); the flat index of an element of p is its index in x
    auto drop = [&](int c) {
      const int64_t k0 = k_begin + static_cast<int64_t>(c) * KC;
      T* ps = Ps + (c % STAGES) * P_SIZE;
#pragma unroll
      for (int it = 0; it < P_IT; ++it) {
        const int v = threadIdx.x + it * kThreads;
        if (v >= P_VECS) continue;
        int i, kk;
        p_coords(v, i, kk);
        const int64_t row = m0 + i, col = k0 + kk;
        const int64_t first = P_COLS ? col * a.p_ld + row : row * a.p_ld + col;
        const uint32_t keep = keep_bits(a.seed, a.offset, a.p16, static_cast<uint64_t>(first), VEC);
        if ((keep & ((1u << VEC) - 1u)) == (1u << VEC) - 1u) continue;
        T* dst = ps + (P_COLS ? kk * LDP + i : i * LDP + kk);
        Vec16<T> u;
        u.raw = *reinterpret_cast<const uint4*>(dst);
#pragma unroll
        for (int e = 0; e < VEC; ++e)
          if (!((keep >> e) & 1u)) u.e[e] = zero_of<T>();
        *reinterpret_cast<uint4*>(dst) = u.raw;
      }
    };
    // prologue: chunks 0 .. STAGES-2 on their way; one commit group per chunk slot, empty ones included, so that
    // "all but the newest STAGES-2 groups complete" always means "chunk c has landed"
#pragma unroll
    for (int c = 0; c < STAGES - 1; ++c) {
      if (c < n_chunks) issue(c);
      __pipeline_commit();
    }
    for (int c = 0; c < n_chunks; ++c) {
      __pipeline_wait_prior(STAGES - 2);
      if (a.dropout) drop(c);
      // publishes chunk c, and every thread is past the product of chunk c-1, whose stage the next issue reuses
      __syncthreads();
      if (c + STAGES - 1 < n_chunks) issue(c + STAGES - 1);
      __pipeline_commit();
      const int st = c % STAGES;
      acc.template mma<KC, P_COLS, Q_T>(Ps + st * P_SIZE, LDP, Qs + st * Q_SIZE, LDQ);
    }
    __pipeline_wait_prior(0);
    pass = a.adapter ? ad.advance(pass) : -1;  // advance() starts with a barrier: the stages are free again
  }
  __syncthreads();

  // ---- partial tile -> global, then the last split block of this tile reduces ----
  const int64_t m_pad = a.m_tiles * BM;
  acc.store(a.partial + (static_cast<int64_t>(split) * m_pad + m0) * RP, RP);
  __threadfence();
  __syncthreads();
  if (a.splits > 1) {
    if (!last_block_arrive(&a.counters[tile], static_cast<unsigned>(a.splits))) return;
    if (threadIdx.x == 0) a.counters[tile] = 0u;  // ready for the next kernel on this stream
  }
  const int R = a.R;
  T* out = static_cast<T*>(a.out);
  for (int v = threadIdx.x; v < BM * R; v += kThreads) {
    const int i = v / R, j = v % R;
    const int64_t row = m0 + i;
    if (row >= a.M) continue;
    float s = a.scale;
    if (a.adapter) s = ad.id[i] >= 0 ? a.adapter_scale[ad.id[i]] * a.scale : 0.0f;
    const float sum = sum_partials(a.partial + row * RP + j, static_cast<int64_t>(m_pad) * RP, a.splits);
    out[row * a.out_ld + j] = from_f<T>(sum * s);
  }
}

// ============================================================================================================
// expand_kernel: out[t, n] = epi( Σ_j S[t, j] · Q(j, n) ),  K = R <= 256 (chunks of 32)
//   Q(j, n) = q[n·q_ld + j]  (q_t: B [N x R], forward)  or  q[j·q_ld + n]  (A [R x N], backward)
//   epi(v) = (keep(t, n) ? v : 0)·scale + bias[n] (+ out[t, n] when accumulating)
struct ExpandArgs {
  const void* s;
  int64_t s_ld;
  int64_t M, N;
  int R;
  const void* q;
  int64_t q_ld;
  bool q_t;
  int64_t q_adapter_stride;
  const int64_t* adapter;
  int64_t n_adapters;
  const void* bias;
  bool dropout;
  uint32_t p16;
  uint64_t seed, offset;
  float scale;
  void* out;
  int64_t out_ld;
  bool accumulate;
  bool vec_s, vec_q, vec_out, vec_bias;
};

constexpr int kExBM = 64, kExBN = 128;
// K per chunk: 64 for 16-bit types with r > 32 halves the chunks (each waits for its operands from L2) at no cost in
// shared memory, which the fp32 accumulator tile of the epilogue sizes anyway; 32 otherwise (r <= 32 would stage
// mostly zero padding, and fp32 operands at 64 would outgrow the accumulator tile).
template <typename T> constexpr int expand_kc(int r) { return sizeof(T) == 2 && r > 32 ? 64 : 32; }

template <typename T>
struct ExpandTile { using type = WmmaTile<T, 32, 32, 2, 2>; };  // 2 x 4 warps of 32 x 32
template <>
struct ExpandTile<float> { using type = FmaTile<8, 32, 8, 4>; };  // rows r·8.., columns c + 32·j

// Two blocks per SM (128 registers): the accumulators take 32 registers per thread and a chunk's operand loads
// another 12-24 while they are in flight; a cap of 80 registers (three blocks) spilled.
//
// What the H200 profile of the first version showed (ncu, 4096 x 4096, r = 16: 43-57 µs for a 32 MB output, DRAM at
// 4-5 %, SM at 50-63 %, L1 58 %) and what this version changes:
//   - the epilogue's element loops stopped early (break) and indexed a register array at run time, which put the
//     array in local memory: every output element went through L1 twice. Loops are now fully unrolled with
//     predicates, so the vector stays in registers.
//   - operand staging loaded one 16-byte vector, stored it, then loaded the next: every vector waited for L2 in
//     turn. All of a chunk's loads are now issued before the first store to shared memory.
//   - dropout keep bits (one Philox block per 8 elements) were computed in the epilogue after the product; they
//     depend only on indexes, so they are now computed while the first operand loads are in flight.
template <typename T, bool Q_T, int KC>
__global__ void __launch_bounds__(kThreads, 2) expand_kernel(const ExpandArgs a) {
  constexpr int BM = kExBM, BN = kExBN, VEC = vec_of<T>(), PAD = pad_of<T>();
  constexpr int LDS = KC + PAD, LDQ = Q_T ? KC + PAD : BN + PAD, Q_ROWS = Q_T ? BN : KC, LDC = BN + 4;
  constexpr int OPS_BYTES = (BM * LDS + Q_ROWS * LDQ) * static_cast<int>(sizeof(T));
  constexpr int C_BYTES = BM * LDC * static_cast<int>(sizeof(float));
  constexpr int S_VECS = BM * KC / VEC, Q_VECS = BN * KC / VEC;
  constexpr int S_IT = (S_VECS + kThreads - 1) / kThreads, Q_IT = (Q_VECS + kThreads - 1) / kThreads;
  constexpr int OUT_VECS = BM * BN / VEC, OUT_IT = OUT_VECS / kThreads;
  static_assert(OUT_VECS % kThreads == 0, "expand_kernel: output vectors must split evenly over the threads");
  __shared__ __align__(128) unsigned char smem[OPS_BYTES > C_BYTES ? OPS_BYTES : C_BYTES];
  __shared__ TileAdapters<BM> ad;
  T* Ss = reinterpret_cast<T*>(smem);
  T* Qs = Ss + BM * LDS;
  float* Cs = reinterpret_cast<float*>(smem);

  pdl_wait_and_release();
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * BN;
  const T* __restrict__ S = static_cast<const T*>(a.s);

  typename ExpandTile<T>::type acc;
  acc.init(2, 4);
  ad.load(a.adapter, a.n_adapters, m0, a.M);

  // output vector `it` of this thread: row i, columns nn .. nn+VEC-1 of the tile
  auto out_coords = [](int it, int& i, int& nn) {
    const int v = threadIdx.x + it * kThreads;
    i = v / (BN / VEC);
    nn = (v % (BN / VEC)) * VEC;
  };
  auto q_coords = [](int v, int& j, int& n) {
    if (Q_T) { n = v / (KC / VEC); j = (v % (KC / VEC)) * VEC; }
    else { j = v / (BN / VEC); n = (v % (BN / VEC)) * VEC; }
  };

  // keep bits of all of this thread's output vectors in one register: bits it·VEC .. it·VEC+VEC-1 for vector it
  static_assert(OUT_IT * VEC == 32, "expand_kernel: keep bits must fill one 32-bit word");
  bool keep_done = false;
  uint32_t keep = 0xffffffffu;
  auto compute_keep = [&]() {
    keep_done = true;
    if (!a.dropout) return;
    keep = 0;
    // one Philox block at a time: unrolled, the interleaved blocks would need more registers than the cap allows
#pragma unroll 1
    for (int it = 0; it < OUT_IT; ++it) {
      int i, nn;
      out_coords(it, i, nn);
      const int64_t row = m0 + i, col = n0 + nn;
      if (row < a.M && col < a.N) {
        const uint32_t bits = keep_bits(a.seed, a.offset, a.p16, static_cast<uint64_t>(row * a.out_ld + col),
                                        static_cast<int>(min64(VEC, a.N - col)));
        keep |= (bits & ((1u << VEC) - 1u)) << (it * VEC);
      }
    }
  };

  int64_t pass = a.adapter ? ad.advance(-1) : 0;
  while (pass >= 0) {
    const T* __restrict__ Q = static_cast<const T*>(a.q) + (a.adapter ? pass * a.q_adapter_stride : 0);
    for (int k0 = 0; k0 < a.R; k0 += KC) {
      T sv[S_IT][VEC], qv[Q_IT][VEC];
#pragma unroll
      for (int it = 0; it < S_IT; ++it) {
        const int v = threadIdx.x + it * kThreads;
        const int i = v / (KC / VEC), kk = (v % (KC / VEC)) * VEC;
        const int64_t row = m0 + i;
        const int col = k0 + kk;
        const bool row_on = v < S_VECS && row < a.M && (!a.adapter || ad.id[i] == pass);
        const int count = row_on ? min(VEC, a.R - col) : 0;
        fetch(S + (count > 0 ? row * a.s_ld + col : 0), count < 0 ? 0 : count, a.vec_s, sv[it]);
      }
#pragma unroll
      for (int it = 0; it < Q_IT; ++it) {
        const int v = threadIdx.x + it * kThreads;
        int j, n;
        q_coords(v, j, n);
        const int64_t col = n0 + n;
        const int jj = k0 + j;
        int count = 0;
        int64_t first = 0;
        if (v < Q_VECS) {
          if (Q_T) {
            first = col * a.q_ld + jj;
            if (col < a.N) count = min(VEC, a.R - jj);
          } else {
            first = static_cast<int64_t>(jj) * a.q_ld + col;
            if (jj < a.R) count = static_cast<int>(min64(VEC, a.N - col));
          }
        }
        fetch(Q + (count > 0 ? first : 0), count < 0 ? 0 : count, a.vec_q, qv[it]);
      }
      if (!keep_done) compute_keep();  // while the first chunk's loads are in flight
      // S[BM x KC] -> Ss (row-major); Q[KC x BN] -> Qs: Q_T keeps B's rows (column-major Q), otherwise A's rows
#pragma unroll
      for (int it = 0; it < S_IT; ++it) {
        const int v = threadIdx.x + it * kThreads;
        if (v < S_VECS) store_vec(Ss + (v / (KC / VEC)) * LDS + (v % (KC / VEC)) * VEC, sv[it]);
      }
#pragma unroll
      for (int it = 0; it < Q_IT; ++it) {
        const int v = threadIdx.x + it * kThreads;
        int j, n;
        q_coords(v, j, n);
        if (v < Q_VECS) store_vec(Qs + (Q_T ? n * LDQ + j : j * LDQ + n), qv[it]);
      }
      __syncthreads();
      acc.template mma<KC, false, Q_T>(Ss, LDS, Qs, LDQ);
      __syncthreads();
    }
    pass = a.adapter ? ad.advance(pass) : -1;
  }
  if (!keep_done) compute_keep();  // a multi-adapter tile without any adapter row
  // operand staging is dead from here on: the accumulators take its place in shared memory
  __syncthreads();
  acc.store(Cs, LDC);
  __syncthreads();

  T* __restrict__ out = static_cast<T*>(a.out);
  const T* __restrict__ bias = static_cast<const T*>(a.bias);
#pragma unroll
  for (int it = 0; it < OUT_IT; ++it) {
    int i, nn;
    out_coords(it, i, nn);
    const int64_t row = m0 + i, col = n0 + nn;
    if (row >= a.M || col >= a.N) continue;
    const int64_t first = row * a.out_ld + col;
    const int n_here = static_cast<int>(min64(VEC, a.N - col));
    T prev[VEC], bv[VEC], vals[VEC];
    if (a.accumulate) fetch<true>(out + first, n_here, a.vec_out, prev);
    if (bias) fetch(bias + col, n_here, a.vec_bias, bv);
#pragma unroll
    for (int e = 0; e < VEC; ++e) {
      float v0 = ((keep >> (it * VEC + e)) & 1u) ? Cs[i * LDC + nn + e] * a.scale : 0.0f;
      if (bias) v0 += to_f(bv[e]);
      if (a.accumulate) v0 += to_f(prev[e]);
      vals[e] = from_f<T>(v0);
    }
    if (a.vec_out && n_here == VEC) {
      store_vec(out + first, vals);
    } else {
#pragma unroll
      for (int e = 0; e < VEC; ++e)
        if (e < n_here) out[first + e] = vals[e];
    }
  }
}

// ============================================================================================================
// lowrank_kernel: the two single-adapter products that read x, with the dropout fused into the copy of x, on
// tensor cores (WMMA 16x16x16, fp32 accumulators), for 16-bit dtypes and r <= 128:
//   X_T = false (forward):  xs[t, j]  = dtype(scale · Σ_k keep(t,k)·x[t,k]·A[j,k])    tile rows m = t, k = d_in
//   X_T = true  (backward): dA[j, c] += scale · Σ_t keep(t,c)·x[t,c]·ds[t,j]          tile rows m = c, k = t
// Why: cuBLAS cannot mask an operand, so with cuBLAS the dropout costs a transient keep⊙x in memory (read x, write
// and re-read keep⊙x) in forward and again in backward. Here every block copies its x tile global -> registers ->
// shared memory and zeroes the dropped elements in registers on the way (element coordinates are plain there), so
// x is read once per product and keep⊙x never exists. The keep bits (one Philox block per 8 elements, the rule of
// lora_dropout.h) depend only on coordinates: they are computed while the tile's loads are in flight.
//
// Block: BM rows of the output (x rows in forward, x columns in backward) x RP (r padded to 16..128), 8 warps as
// WARPS_M x WARPS_N x WARPS_K: each warp owns a 32 x WN accumulator tile (2 x WN/16 fragments: 2 + WN/16 fragment
// loads per 2·WN/16 MMAs) and every WARPS_K-th 16-wide k step of a chunk; the WARPS_K partial tiles are summed
// through shared memory at the end. The k range is split over gridDim.y for one full wave of resident blocks; the
// fp32 partials of the splits are added by the last block of the tile in split order (deterministic, as in
// skinny_kernel). Memory: a chunk is BM x KC = 16 KB of x per block (four 16-byte loads per thread), loaded into
// registers while the block multiplies the previous chunk from shared memory (two stages, one barrier per chunk);
// the other operand (A or ds, small and L2-resident, no mask) goes straight to its stage by cp.async, which keeps
// its registers free for the accumulators. With 2-3 resident blocks per SM, 4-6 MB of x loads are in flight on the
// H200, above the ~3.5 MB HBM latency needs at 4.3 TB/s (Little's law). The previous skinny kernels' profile
// (RESULTS.md: 10-17 % of DRAM bandwidth) had ~1.3 MB in flight.
template <int RP>
struct LowRankCfg {
  static constexpr int BM = RP >= 64 ? 128 : 64;
  static constexpr int KC = RP >= 64 ? 64 : 128;  // BM·KC = 8192 elements: 16 KB of a 16-bit x per chunk
  static constexpr int WARPS_M = BM / 32;
  static constexpr int WARPS_N = RP == 128 ? 2 : 1;
  static constexpr int WARPS_K = 8 / (WARPS_M * WARPS_N);
  static constexpr int WN = RP / WARPS_N;
  // resident blocks per SM the register cap allows for: 3 (80 registers) spilled from RP = 32 on (32-64
  // accumulator registers per thread)
  static constexpr int MIN_BLOCKS = RP >= 32 ? 2 : 3;
  static_assert(WARPS_M * WARPS_N * WARPS_K == kThreads / 32, "LowRankCfg: warps must cover the block");
  static_assert((KC / 16) % WARPS_K == 0, "LowRankCfg: k steps must split evenly over the warp groups");
};

// Shared memory of one block (16-bit operands): two stages of the x tile and the other operand, or, after the K
// loop, the WARPS_K fp32 accumulator tiles (stored transposed for X_T, so the epilogue reads along the output rows).
template <int RP, bool X_T>
constexpr int lowrank_ldp() { return X_T ? LowRankCfg<RP>::BM + 8 : LowRankCfg<RP>::KC + 8; }
template <int RP, bool X_T>
constexpr int lowrank_ldq() { return X_T ? RP + 8 : LowRankCfg<RP>::KC + 8; }
template <int RP, bool X_T>
constexpr int lowrank_p_size() { return (X_T ? LowRankCfg<RP>::KC : LowRankCfg<RP>::BM) * lowrank_ldp<RP, X_T>(); }
template <int RP, bool X_T>
constexpr int lowrank_q_size() { return (X_T ? LowRankCfg<RP>::KC : RP) * lowrank_ldq<RP, X_T>(); }
template <int RP, bool X_T>
constexpr int lowrank_ldc() { return X_T ? LowRankCfg<RP>::BM + 4 : RP + 4; }
template <int RP, bool X_T>
constexpr int lowrank_smem_bytes() {
  constexpr int stages = 2 * (lowrank_p_size<RP, X_T>() + lowrank_q_size<RP, X_T>()) * 2;
  constexpr int acc = LowRankCfg<RP>::WARPS_K * (X_T ? RP : LowRankCfg<RP>::BM) * lowrank_ldc<RP, X_T>() * 4;
  return stages > acc ? stages : acc;
}

struct LowRankArgs {
  const void* x;  // [rows, d_in]
  int64_t x_ld;
  const void* q;  // A [r, d_in] (forward) or ds [rows, r] (backward)
  int64_t q_ld;
  int64_t M, K;   // output rows of the tile grid and the reduction length
  int R;
  bool dropout;
  uint32_t p16;
  uint64_t seed, offset;
  float scale;
  int splits;
  int64_t k_per_split, m_tiles;
  float* partial;      // [splits][m_tiles·BM·RP]
  unsigned* counters;  // [m_tiles], zero on entry, left zero
  void* out;           // xs (dtype, ld r) or grad A (fp32, ld d_in)
  int64_t out_ld;
  bool vec_x, vec_q;
};

// 16 bytes = VEC elements from src[0 .. count) (zeros after them) as one register vector.
template <typename T>
__device__ __forceinline__ uint4 load16(const T* src, int count, bool vec_ok) {
  constexpr int VEC = vec_of<T>();
  Vec16<T> u;
  if (count >= VEC && vec_ok) {
    u.raw = __ldg(reinterpret_cast<const uint4*>(src));
  } else {
#pragma unroll
    for (int e = 0; e < VEC; ++e) u.e[e] = e < count ? src[e] : zero_of<T>();
  }
  return u.raw;
}

template <typename T, int RP, bool X_T>
__global__ void __launch_bounds__(kThreads, LowRankCfg<RP>::MIN_BLOCKS) lowrank_kernel(const LowRankArgs a) {
  using Cfg = LowRankCfg<RP>;
  static_assert(is_16bit<T>(), "lowrank_kernel: 16-bit dtypes only (fp32 stays on cuBLAS)");
  constexpr int BM = Cfg::BM, KC = Cfg::KC, VEC = vec_of<T>(), WN = Cfg::WN;
  constexpr int LDP = lowrank_ldp<RP, X_T>(), LDQ = lowrank_ldq<RP, X_T>(), LDC = lowrank_ldc<RP, X_T>();
  constexpr int P_SIZE = lowrank_p_size<RP, X_T>(), Q_SIZE = lowrank_q_size<RP, X_T>();
  constexpr int P_VECS = BM * KC / VEC, P_IT = P_VECS / kThreads;
  constexpr int Q_VECS = RP * KC / VEC, Q_IT = (Q_VECS + kThreads - 1) / kThreads;
  static_assert(P_VECS % kThreads == 0, "lowrank_kernel: x tile vectors must split evenly over the threads");
#ifdef SA2VA_CUDA_EMULATION
  __shared__ __align__(128) unsigned char smem[lowrank_smem_bytes<RP, X_T>()];
#else
  extern __shared__ __align__(128) unsigned char smem[];
#endif
  T* const Ps = reinterpret_cast<T*>(smem);
  T* const Qs = Ps + 2 * P_SIZE;
  float* const Cs = reinterpret_cast<float*>(smem);

  pdl_wait_and_release();
  const int64_t tile = blockIdx.x;
  const int split = blockIdx.y;
  const int64_t m0 = tile * BM;
  const int64_t k_begin = split * a.k_per_split;
  const int64_t k_end = min64(a.K, k_begin + a.k_per_split);
  const int n_chunks = k_begin < k_end ? static_cast<int>((k_end - k_begin + KC - 1) / KC) : 0;
  const T* __restrict__ X = static_cast<const T*>(a.x);
  const T* __restrict__ Q = static_cast<const T*>(a.q);

  const int warp = threadIdx.x >> 5;
  const int wm = warp % Cfg::WARPS_M, wn = (warp / Cfg::WARPS_M) % Cfg::WARPS_N;
  const int wk = warp / (Cfg::WARPS_M * Cfg::WARPS_N);
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][WN / 16];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < WN / 16; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  // Per chunk c (k0 = k_begin + c·KC): `rem` = reduction indices left in the split (at most KC), `xbase` = the
  // chunk's first x element; a thread's vectors sit at 32-bit offsets from it (host: BM·x_ld and KC·x_ld < 2^31).
  // Forward: vector v covers x row m0 + i, columns k0 + kk .. +VEC; backward: x row k0 + kk, columns m0 + i .. +VEC.
  const int m_rem = static_cast<int>(min64(a.M - m0, BM));
  auto chunk_rem = [&](int c) { return static_cast<int>(min64(k_end - (k_begin + static_cast<int64_t>(c) * KC), KC)); };
  auto chunk_xbase = [&](int c) {
    const int64_t k0 = k_begin + static_cast<int64_t>(c) * KC;
    return X_T ? k0 * a.x_ld + m0 : m0 * a.x_ld + k0;
  };
  // vector it of this thread: offset from xbase, stage slot, and valid element count
  auto x_vec = [&](int it, int rem, int& off, int& slot) {
    const int v = threadIdx.x + it * kThreads;
    int count;
    if (X_T) {
      const int kk = v / (BM / VEC), i = (v % (BM / VEC)) * VEC;
      off = kk * static_cast<int>(a.x_ld) + i;
      slot = kk * LDP + i;
      count = kk < rem ? min(VEC, m_rem - i) : 0;
    } else {
      const int i = v / (KC / VEC), kk = (v % (KC / VEC)) * VEC;
      off = i * static_cast<int>(a.x_ld) + kk;
      slot = i * LDP + kk;
      count = i < m_rem ? min(VEC, rem - kk) : 0;
    }
    return count > 0 ? count : 0;
  };

  uint4 xr[P_IT];
  uint32_t keep[P_IT];
  // Issues the loads of chunk c: x into registers, the other operand straight into its stage by cp.async (it needs
  // no mask; tails and unaligned operands element-wise). Then the keep bits, while the loads are in flight. Stage
  // (c % 2) is free: every warp passed the barrier after its product of chunk c - 2.
  auto load_chunk = [&](int c) {
    const int rem = chunk_rem(c);
    const int64_t xb = chunk_xbase(c);
#pragma unroll
    for (int it = 0; it < P_IT; ++it) {
      int off, slot;
      const int count = x_vec(it, rem, off, slot);
      xr[it] = load16(X + (count > 0 ? xb + off : 0), count, a.vec_x);
    }
    const int64_t k0 = k_begin + static_cast<int64_t>(c) * KC;
    const T* qb = X_T ? Q + k0 * a.q_ld : Q + k0;
    T* qs = Qs + (c & 1) * Q_SIZE;
#pragma unroll
    for (int it = 0; it < Q_IT; ++it) {
      const int v = threadIdx.x + it * kThreads;
      if (Q_VECS % kThreads != 0 && v >= Q_VECS) continue;
      int off, slot, count;
      if (X_T) {  // ds rows k0 + kk, columns j .. j+VEC
        const int kk = v / (RP / VEC), j = (v % (RP / VEC)) * VEC;
        off = kk * static_cast<int>(a.q_ld) + j;
        slot = kk * LDQ + j;
        count = kk < rem ? min(VEC, a.R - j) : 0;
      } else {    // A rows j, columns k0 + kk .. +VEC
        const int j = v / (KC / VEC), kk = (v % (KC / VEC)) * VEC;
        off = j * static_cast<int>(a.q_ld) + kk;
        slot = j * LDQ + kk;
        count = j < a.R ? min(VEC, rem - kk) : 0;
      }
      if (count >= VEC && a.vec_q) {
        __pipeline_memcpy_async(qs + slot, qb + off, 16);
      } else {
        Vec16<T> u;
#pragma unroll
        for (int e = 0; e < VEC; ++e) u.e[e] = e < count ? qb[off + e] : zero_of<T>();
        *reinterpret_cast<uint4*>(qs + slot) = u.raw;
      }
    }
    __pipeline_commit();
    if (a.dropout) {
#pragma unroll
      for (int it = 0; it < P_IT; ++it) {
        int off, slot;
        const int count = x_vec(it, rem, off, slot);
        keep[it] = count > 0 ? keep_bits(a.seed, a.offset, a.p16, static_cast<uint64_t>(xb + off), count) : 0u;
      }
    }
  };
  // x registers -> stage c % 2, dropped elements zeroed on the way; waits for the stage's cp.async copies
  auto store_chunk = [&](int c) {
    const int rem = chunk_rem(c);
    T* ps = Ps + (c & 1) * P_SIZE;
#pragma unroll
    for (int it = 0; it < P_IT; ++it) {
      int off, slot;
      x_vec(it, rem, off, slot);
      Vec16<T> u;
      u.raw = xr[it];
      if (a.dropout) {
#pragma unroll
        for (int e = 0; e < VEC; ++e)
          if (!((keep[it] >> e) & 1u)) u.e[e] = zero_of<T>();
      }
#ifdef SA2VA_CUDA_EMULATION
      emu::check_aligned(ps + slot, 16, "lowrank_kernel x stage");
#endif
      *reinterpret_cast<uint4*>(ps + slot) = u.raw;
    }
    __pipeline_wait_prior(0);
  };
  using LayoutX = typename LayoutOf<X_T>::type;   // x stage read as matrix_a: row-major (forward), transposed (dA)
  using LayoutQ = typename LayoutOf<!X_T>::type;  // A's rows are Q's columns; ds's rows are Q's rows
  auto multiply = [&](int c) {
    const T* ps = Ps + (c & 1) * P_SIZE;
    const T* qs = Qs + (c & 1) * Q_SIZE;
#pragma unroll
    for (int s0 = 0; s0 < KC / 16; s0 += Cfg::WARPS_K) {
      const int kk = (s0 + wk) * 16;
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, LayoutX> fa[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int r = wm * 32 + 16 * i;
        wmma::load_matrix_sync(fa[i], X_T ? ps + kk * LDP + r : ps + r * LDP + kk, LDP);
      }
#pragma unroll
      for (int j = 0; j < WN / 16; ++j) {
        const int col = wn * WN + 16 * j;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, LayoutQ> fb;
        wmma::load_matrix_sync(fb, X_T ? qs + kk * LDQ + col : qs + col * LDQ + kk, LDQ);
#pragma unroll
        for (int i = 0; i < 2; ++i) wmma::mma_sync(acc[i][j], fa[i], fb, acc[i][j]);
      }
    }
  };

  if (n_chunks > 0) load_chunk(0);
  for (int c = 0; c < n_chunks; ++c) {
    store_chunk(c);
    // publishes stage c % 2; every warp is also past its product of chunk c - 1 (the other stage), which the
    // next store_chunk overwrites
    __syncthreads();
    if (c + 1 < n_chunks) load_chunk(c + 1);  // in flight during the product of chunk c
    multiply(c);
  }
  __syncthreads();  // the stages are dead: the accumulator tiles take their place

  // Cs[wk][i][j] (forward) or Cs[wk][j][i] (backward: i runs along the output rows of dA)
  constexpr int C_TILE = (X_T ? RP : BM) * LDC;
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < WN / 16; ++j) {
      const int r = wm * 32 + 16 * i, col = wn * WN + 16 * j;
      if (X_T) wmma::store_matrix_sync(Cs + wk * C_TILE + col * LDC + r, acc[i][j], LDC, wmma::mem_col_major);
      else wmma::store_matrix_sync(Cs + wk * C_TILE + r * LDC + col, acc[i][j], LDC, wmma::mem_row_major);
    }
  __syncthreads();

  // element v of the tile's valid part: output-row offset i and column j, with consecutive threads on consecutive
  // addresses of the output (j in forward: xs rows; i in backward: dA rows)
  const int R = a.R;
  auto elem = [&](int v, int& i, int& j) {
    if (X_T) { i = v % BM; j = v / BM; }
    else { i = v / R; j = v % R; }
  };
  const int64_t m_pad = a.m_tiles * BM;
  const int64_t stride = m_pad * RP;  // between splits in the partials
  auto pidx = [&](int i, int j) { return X_T ? j * m_pad + m0 + i : (m0 + i) * RP + j; };
  auto block_sum = [&](int i, int j) {
    float s = 0.0f;
#pragma unroll
    for (int w = 0; w < Cfg::WARPS_K; ++w) s += Cs[w * C_TILE + (X_T ? j * LDC + i : i * LDC + j)];
    return s;
  };
  auto epilogue = [&](int i, int j, float sum) {
    const int64_t row = m0 + i;
    if (X_T) {
      float* g = static_cast<float*>(a.out);
      g[static_cast<int64_t>(j) * a.out_ld + row] += a.scale * sum;
    } else {
      static_cast<T*>(a.out)[row * a.out_ld + j] = from_f<T>(a.scale * sum);
    }
  };

  if (a.splits == 1) {
    for (int v = threadIdx.x; v < BM * R; v += kThreads) {
      int i, j;
      elem(v, i, j);
      if (m0 + i < a.M) epilogue(i, j, block_sum(i, j));
    }
    return;
  }
  for (int v = threadIdx.x; v < BM * R; v += kThreads) {
    int i, j;
    elem(v, i, j);
    if (m0 + i < a.M) a.partial[split * stride + pidx(i, j)] = block_sum(i, j);
  }
  __threadfence();
  __syncthreads();
  if (!last_block_arrive(&a.counters[tile], static_cast<unsigned>(a.splits))) return;
  if (threadIdx.x == 0) a.counters[tile] = 0u;  // ready for the next kernel on this stream
  for (int v = threadIdx.x; v < BM * R; v += kThreads) {
    int i, j;
    elem(v, i, j);
    if (m0 + i < a.M) epilogue(i, j, sum_partials(a.partial + pidx(i, j), stride, a.splits));
  }
}

// ============================================================================================================
// masked_expand_kernel: dx[t, c] = keep(t, c) ? scale · Σ_j ds[t, j]·A[j, c] : 0    (16-bit, r <= 128, dropout)
// The low-rank term of dx with the dropout mask applied in the epilogue, so that dx is written once instead of
// written by a cuBLAS GEMM, then read and rewritten by an in-place mask pass (the caller's dY·W accumulates onto
// it with beta = 1 either way). The output is the whole cost (T x d_in, K = r only): each block keeps its 64 rows
// of ds in shared memory and walks a strided set of 128-column tiles; the next tile of A comes by cp.async while
// the current one is multiplied, and the keep bits of a tile (one Philox block per 8 elements) are computed while
// its A tile is on the way. 8 warps as 2 x 4, each with a 32 x 32 accumulator tile; the tile goes through shared
// memory (aliasing its own, consumed A stage) to 16-byte stores.
// The earlier expand_kernel, one tile per block with synchronous operand loads, ran at 4-5 % of DRAM bandwidth on
// the H200 (RESULTS.md): every block waited on L2 latency in turn with nothing else to overlap.
struct MaskedExpandArgs {
  const void* ds;  // [M, R]
  const void* a;   // [R, N]
  int64_t M, N;
  int R;
  uint32_t p16;
  uint64_t seed, offset;
  float scale;
  void* out;       // [M, N]
  int n_groups;    // gridDim.y: block (x, y) takes column tiles y, y + n_groups, ...
  int64_t n_tiles;
  bool vec_ds, vec_a, vec_out;
};

constexpr int kMeBM = 64, kMeBN = 128;
template <int RP>
constexpr int me_ldq() { return kMeBN + 8; }
template <int RP>
constexpr int me_stage_bytes() {
  // an A tile [RP x BN] (16-bit) or, after its product, the fp32 accumulator tile [BM x BN + 4]
  return RP * me_ldq<RP>() * 2 > kMeBM * (kMeBN + 4) * 4 ? RP * me_ldq<RP>() * 2 : kMeBM * (kMeBN + 4) * 4;
}
template <int RP>
constexpr int me_smem_bytes() { return kMeBM * (RP + 8) * 2 + 2 * me_stage_bytes<RP>(); }

template <typename T, int RP>
__global__ void __launch_bounds__(kThreads, 2) masked_expand_kernel(const MaskedExpandArgs a) {
  static_assert(is_16bit<T>(), "masked_expand_kernel: 16-bit dtypes only");
  constexpr int BM = kMeBM, BN = kMeBN, VEC = vec_of<T>(), LDS = RP + 8, LDQ = me_ldq<RP>(), LDC = BN + 4;
  constexpr int STAGE = me_stage_bytes<RP>();
  constexpr int S_VECS = BM * RP / VEC, S_IT = (S_VECS + kThreads - 1) / kThreads;
  constexpr int A_VECS = RP * BN / VEC, A_IT = (A_VECS + kThreads - 1) / kThreads;
  constexpr int OUT_IT = BM * BN / VEC / kThreads;
  static_assert(BM * BN / VEC % kThreads == 0, "masked_expand_kernel: output vectors must split evenly");
#ifdef SA2VA_CUDA_EMULATION
  __shared__ __align__(128) unsigned char smem[me_smem_bytes<RP>()];
#else
  extern __shared__ __align__(128) unsigned char smem[];
#endif
  T* const Ss = reinterpret_cast<T*>(smem);
  unsigned char* const stages = smem + BM * LDS * 2;

  pdl_wait_and_release();
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM;
  const int m_rem = static_cast<int>(min64(a.M - m0, BM));
  const T* __restrict__ DS = static_cast<const T*>(a.ds);
  const T* __restrict__ A = static_cast<const T*>(a.a);
  T* __restrict__ out = static_cast<T*>(a.out);

  // ds rows m0 .. m0+BM-1 (all r columns, zeros past M and R), once per block
#pragma unroll
  for (int it = 0; it < S_IT; ++it) {
    const int v = threadIdx.x + it * kThreads;
    if (S_VECS % kThreads != 0 && v >= S_VECS) continue;
    const int i = v / (RP / VEC), j = (v % (RP / VEC)) * VEC;
    const int count = i < m_rem ? min(VEC, a.R - j) : 0;
    const T* src = DS + (count > 0 ? (m0 + i) * a.R + j : 0);
    if (count >= VEC && a.vec_ds) {
      __pipeline_memcpy_async(Ss + i * LDS + j, src, 16);
    } else {
      Vec16<T> u;
#pragma unroll
      for (int e = 0; e < VEC; ++e) u.e[e] = e < count ? src[e] : zero_of<T>();
      *reinterpret_cast<uint4*>(Ss + i * LDS + j) = u.raw;
    }
  }

  // A tile of column tile nt -> stage s (copies committed as one group by the caller)
  auto load_a = [&](int64_t nt, int s) {
    T* as = reinterpret_cast<T*>(stages + s * STAGE);
    const int64_t n0 = nt * BN;
#pragma unroll
    for (int it = 0; it < A_IT; ++it) {
      const int v = threadIdx.x + it * kThreads;
      if (A_VECS % kThreads != 0 && v >= A_VECS) continue;
      const int j = v / (BN / VEC), n = (v % (BN / VEC)) * VEC;
      const int count = j < a.R ? static_cast<int>(min64(VEC, a.N - n0 - n)) : 0;
      const T* src = A + (count > 0 ? static_cast<int64_t>(j) * a.N + n0 + n : 0);
      if (count >= VEC && a.vec_a) {
        __pipeline_memcpy_async(as + j * LDQ + n, src, 16);
      } else {
        Vec16<T> u;
#pragma unroll
        for (int e = 0; e < VEC; ++e) u.e[e] = e < count ? src[e] : zero_of<T>();
        *reinterpret_cast<uint4*>(as + j * LDQ + n) = u.raw;
      }
    }
  };
  // output vector `it` of this thread in a tile: row i, columns nn .. nn+VEC-1
  auto out_coords = [](int it, int& i, int& nn) {
    const int v = threadIdx.x + it * kThreads;
    i = v / (BN / VEC);
    nn = (v % (BN / VEC)) * VEC;
  };

  const int warp = threadIdx.x >> 5;
  const int wm = warp % 2, wn = warp / 2;  // 2 x 4 warps of 32 x 32
  int64_t nt = blockIdx.y;
  if (nt < a.n_tiles) load_a(nt, 0);
  __pipeline_commit();  // with the ds copies: the first group
  for (int c = 0; nt < a.n_tiles; ++c, nt += a.n_groups) {
    const int st = c & 1;
    const int64_t n0 = nt * BN;
    __pipeline_wait_prior(0);
    // publishes A tile c (and ds); every thread is past the epilogue of tile c - 1, which read the other stage
    __syncthreads();
    if (nt + a.n_groups < a.n_tiles) load_a(nt + a.n_groups, st ^ 1);
    __pipeline_commit();
    uint32_t keep[OUT_IT];
#pragma unroll
    for (int it = 0; it < OUT_IT; ++it) {
      int i, nn;
      out_coords(it, i, nn);
      const int64_t col = n0 + nn;
      keep[it] = i < m_rem && col < a.N
                     ? keep_bits(a.seed, a.offset, a.p16, static_cast<uint64_t>((m0 + i) * a.N + col),
                                 static_cast<int>(min64(VEC, a.N - col)))
                     : 0u;
    }
    const T* as = reinterpret_cast<const T*>(stages + st * STAGE);
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
#pragma unroll
    for (int kk = 0; kk < RP; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], Ss + (wm * 32 + 16 * i) * LDS + kk, LDS);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb;
        wmma::load_matrix_sync(fb, as + kk * LDQ + wn * 32 + 16 * j, LDQ);
#pragma unroll
        for (int i = 0; i < 2; ++i) wmma::mma_sync(acc[i][j], fa[i], fb, acc[i][j]);
      }
    }
    __syncthreads();  // every warp is done with A tile c: its stage takes the accumulators
    float* cs = reinterpret_cast<float*>(stages + st * STAGE);
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j)
        wmma::store_matrix_sync(cs + (wm * 32 + 16 * i) * LDC + wn * 32 + 16 * j, acc[i][j], LDC, wmma::mem_row_major);
    __syncthreads();
#pragma unroll
    for (int it = 0; it < OUT_IT; ++it) {
      int i, nn;
      out_coords(it, i, nn);
      const int64_t col = n0 + nn;
      if (i >= m_rem || col >= a.N) continue;
      const int n_here = static_cast<int>(min64(VEC, a.N - col));
      Vec16<T> u;
#pragma unroll
      for (int e = 0; e < VEC; ++e)
        u.e[e] = from_f<T>(((keep[it] >> e) & 1u) ? cs[i * LDC + nn + e] * a.scale : 0.0f);
      T* dst = out + (m0 + i) * a.N + col;
      if (a.vec_out && n_here == VEC) {
        *reinterpret_cast<uint4*>(dst) = u.raw;
      } else {
        for (int e = 0; e < n_here; ++e) dst[e] = u.e[e];
      }
    }
  }
  __pipeline_wait_prior(0);
}

// ============================================================================================================
// Elementwise kernels around the cuBLAS products (single-adapter path). Flat over n elements in 16-byte vectors,
// grid-stride; a vector that would run past n, or operands that are not 16-byte aligned, go element by element.

// out[i] = keep(i) ? in[i] : 0 (the rule of lora_dropout.h; the 1/(1-p') rescale is folded into the GEMM's alpha).
// in may equal out (dx is masked in place), so no read-only loads.
template <typename T>
__global__ void __launch_bounds__(kThreads) dropout_apply_kernel(const T* in, T* out, int64_t n, uint64_t seed,
                                                                 uint64_t offset, uint32_t p16, bool vec_ok) {
  constexpr int VEC = vec_of<T>();
  pdl_wait_and_release();
  const int64_t n_vec = (n + VEC - 1) / VEC;
  for (int64_t v = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x; v < n_vec;
       v += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t first = v * VEC;
    if (vec_ok && first + VEC <= n) {
      // one Philox block covers 8 elements: one call per 16-byte vector of a 16-bit type, every other for fp32
      const uint32_t keep = keep_bits(seed, offset, p16, static_cast<uint64_t>(first), VEC);
      T vals[VEC];
      load_vec_rw(in + first, vals);
#pragma unroll
      for (int e = 0; e < VEC; ++e)
        if (!((keep >> e) & 1u)) vals[e] = zero_of<T>();
      store_vec(out + first, vals);
    } else {
      for (int64_t i = first; i < n && i < first + VEC; ++i)
        out[i] = lora_keep(seed, offset, static_cast<uint64_t>(i), p16) ? in[i] : zero_of<T>();
    }
  }
}

// y[t, n] = bias[n]: the start value the bias-less GEMM y = xs·Bᵀ accumulates onto (beta = 1).
template <typename T>
__global__ void __launch_bounds__(kThreads) bias_rows_kernel(const T* __restrict__ bias, T* __restrict__ y,
                                                             int64_t rows, int64_t cols, bool vec_ok) {
  constexpr int VEC = vec_of<T>();
  pdl_wait_and_release();
  const int64_t n = rows * cols, n_vec = (n + VEC - 1) / VEC;
  for (int64_t v = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x; v < n_vec;
       v += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t first = v * VEC;
    if (vec_ok && first + VEC <= n) {  // vec_ok: cols % VEC == 0, so a vector stays within one row
      T vals[VEC];
      load_vec(bias + first % cols, vals);
      store_vec(y + first, vals);
    } else {
      for (int64_t i = first; i < n && i < first + VEC; ++i) y[i] = bias[i % cols];
    }
  }
}

// ============================================================================================================
// merge_kernel: W[n, k] += scale · Σ_j B[n, j]·A[j, k]   (fp32 FMAs; runs once per deployment)
template <typename T>
__global__ void __launch_bounds__(kThreads) merge_kernel(T* __restrict__ w, int64_t d_out, int64_t d_in, int r,
                                                         const float* __restrict__ A, const float* __restrict__ B,
                                                         float scale) {
  constexpr int TB = 64, KC = 16;
  __shared__ float Bs[TB][KC + 1];
  __shared__ float As[KC][TB + 1];
  pdl_wait_and_release();
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * TB, k0 = static_cast<int64_t>(blockIdx.x) * TB;
  const int tr = threadIdx.x / 16, tc = threadIdx.x % 16;
  float c[4][4] = {};
  for (int j0 = 0; j0 < r; j0 += KC) {
    for (int v = threadIdx.x; v < TB * KC; v += kThreads) {
      const int n = v / KC, j = v % KC;
      Bs[n][j] = (n0 + n < d_out && j0 + j < r) ? B[(n0 + n) * r + j0 + j] : 0.0f;
      const int jj = v / TB, k = v % TB;
      As[jj][k] = (j0 + jj < r && k0 + k < d_in) ? A[static_cast<int64_t>(j0 + jj) * d_in + k0 + k] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < KC; ++j)
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int q = 0; q < 4; ++q) c[i][q] = fmaf(Bs[tr * 4 + i][j], As[j][tc + 16 * q], c[i][q]);
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int64_t n = n0 + tr * 4 + i, k = k0 + tc + 16 * q;
      if (n < d_out && k < d_in) w[n * d_in + k] = from_f<T>(to_f(w[n * d_in + k]) + scale * c[i][q]);
    }
}

// ============================================================================================================
// Host side: planning of splits and scratch, and launch helpers.

int rank_pad(int64_t r) {
  int rp = 16;
  while (rp < r) rp *= 2;
  return rp;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t align_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

int64_t elem_size(int dtype) { return dtype == F32 ? 4 : 2; }

// Split of the K dimension of a skinny product: enough blocks for one full wave, but fp32 partials no
// larger than half of the bytes the split saves reading, and at least two K chunks per split.
struct SkinnyPlan {
  int splits;
  int64_t k_per_split, m_tiles;
  int64_t partial_floats() const { return static_cast<int64_t>(splits) * m_tiles * kSkBM; }
};

SkinnyPlan plan_skinny(int64_t M, int64_t K, int rp, int64_t esize, bool p_cols, bool q_t) {
  SkinnyPlan p;
  const int kc = skinny_kc(static_cast<int>(esize), rp, p_cols, q_t);
  p.m_tiles = ceil_div(M, kSkBM);
  const int64_t chunks = ceil_div(K, kc);
  // as many blocks as the launch bounds keep resident, so one wave keeps every SM streaming
  const int64_t want = ceil_div(skinny_blocks_per_sm(rp, p_cols) * static_cast<int64_t>(device_sm_count()), p.m_tiles);
  const int64_t by_traffic = std::max<int64_t>(1, (K * esize) / (8LL * rp));
  const int64_t by_chunks = std::max<int64_t>(1, chunks / 2);
  const int64_t s = std::max<int64_t>(1, std::min<int64_t>({want, by_traffic, by_chunks, 32}));
  p.k_per_split = ceil_div(chunks, s) * kc;
  p.splits = static_cast<int>(ceil_div(K, p.k_per_split));
  return p;
}

constexpr int64_t kAlign = 256;

struct ForwardLayout {
  int64_t partial_off, xs_off, xd_off, total;
};

// Scratch of one call inside the per-stream workspace (common/workspace.h), reused by the next call on the stream
// (ordered after this one): the fp32 split-K partials of our kernels; xs when the caller does not keep it
// (inference); drop(x) when the cuBLAS path runs with dropout (xd).
ForwardLayout forward_layout(int dtype, int64_t rows, int64_t d_in, int64_t rank, bool has_xs, int64_t partial_bytes,
                             bool xd) {
  ForwardLayout l;
  l.partial_off = 0;
  l.xs_off = align_up(partial_bytes, kAlign);
  l.xd_off = has_xs ? l.xs_off : align_up(l.xs_off + rows * rank * elem_size(dtype), kAlign);
  l.total = xd ? align_up(l.xd_off + rows * d_in * elem_size(dtype), kAlign) : l.xd_off;
  return l;
}

// ds = dY·B, then the partials of the fused dA product or, for the cuBLAS path with dropout, drop(x).
struct BackwardLayout {
  int64_t ds_off, xd_off, total;
};

BackwardLayout backward_layout(int dtype, int64_t rows, int64_t d_in, int64_t rank, int64_t partial_bytes, bool xd) {
  BackwardLayout l;
  const int64_t es = elem_size(dtype);
  l.ds_off = 0;
  l.xd_off = align_up(rows * rank * es, kAlign);
  l.total = align_up(l.xd_off + std::max<int64_t>(partial_bytes, xd ? rows * d_in * es : 0), kAlign);
  return l;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

std::atomic<int> g_pdl{-1};  // -1: decide from SA2VA_LORA_PDL (default on)

bool pdl_enabled() { return pdl_switch_enabled(g_pdl, "SA2VA_LORA_PDL"); }

#ifdef SA2VA_CUDA_EMULATION
// The emulation has no shared-memory limits, so it records what allow_smem granted each kernel and refuses a launch
// asking for more, as the GPU does (a missing grant failed only on the H200 once: see allow_smem).
inline std::map<const void*, size_t>& emu_smem_grants(std::unique_lock<std::mutex>& lock) {
  static std::mutex mu;
  static std::map<const void*, size_t> grants;
  lock = std::unique_lock<std::mutex>(mu);
  return grants;
}
#endif

// Launches with the programmatic-dependent-launch attribute where the GPU has it (see pdl_wait_and_release).
// smem: dynamic shared memory in bytes (the kernel must have been allowed it: allow_smem).
template <typename... KArgs, typename... Args>
void launch_kernel_smem(void (*kernel)(KArgs...), dim3 grid, size_t smem, cudaStream_t stream, const char* name,
                        Args... args) {
#ifdef SA2VA_CUDA_EMULATION
  if (smem > 0) {
    std::unique_lock<std::mutex> lock;
    auto& grants = emu_smem_grants(lock);
    const auto it = grants.find(reinterpret_cast<const void*>(kernel));
    if (it == grants.end() || it->second < smem)
      throw std::logic_error(str_cat(name, ": launched with ", smem, " bytes of dynamic shared memory but allowed ",
                                     it == grants.end() ? 0 : it->second, " (allow_smem), which the GPU refuses"));
  }
  SA2VA_LAUNCH(grid, kThreads, stream, kernel)(args...);
#else
  SA2VA_CUDA_CHECK(launch_pdl(kernel, grid, dim3(kThreads), smem, stream, pdl_enabled(), args...));
#endif
  SA2VA_CUDA_CHECK_LAUNCH(name);
}

template <typename... KArgs, typename... Args>
void launch_kernel(void (*kernel)(KArgs...), dim3 grid, cudaStream_t stream, const char* name, Args... args) {
  launch_kernel_smem(kernel, grid, 0, stream, name, args...);
}

// Lets `kernel` use `bytes` of dynamic shared memory on the current device, once per device; `done` is the caller's
// per-kernel record. Set at every size: without it the limit is 48 KB minus the kernel's static shared memory, so
// lowrank_kernel<16, true> (exactly 48 KB dynamic plus a static handshake flag) failed to launch on the H200.
template <typename K>
void allow_smem(K kernel, int bytes, std::atomic<bool> (&done)[64]) {
#ifdef SA2VA_CUDA_EMULATION
  (void)done;
  std::unique_lock<std::mutex> lock;
  emu_smem_grants(lock)[reinterpret_cast<const void*>(kernel)] = static_cast<size_t>(bytes);
#else
  int dev = 0;
  SA2VA_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev >= 0 && dev < 64 && done[dev].load()) return;
  SA2VA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  if (dev >= 0 && dev < 64) done[dev].store(true);
#endif
}


// Only the multi-adapter shrink xs = x·Aᵀ (rows of x, A's rows) runs here now; the single-adapter products go to
// cuBLAS (see the host side below).
template <typename T, int RP>
void launch_skinny_rp(const SkinnyArgs& a, cudaStream_t stream) {
  dim3 grid(static_cast<unsigned>(a.m_tiles), static_cast<unsigned>(a.splits));
  if (!a.p_cols && a.q_t) launch_kernel(skinny_kernel<T, RP, false, true>, grid, stream, "lora skinny_kernel", a);
  else fail_arg("lora: internal error, skinny layout not instantiated");
}

template <typename T>
void launch_skinny(SkinnyArgs a, const SkinnyPlan& plan, int rp, cudaStream_t stream) {
  constexpr int VEC = vec_of<T>();
  a.splits = plan.splits;
  a.k_per_split = plan.k_per_split;
  a.m_tiles = plan.m_tiles;
  a.vec_p = aligned16(a.p) && a.p_ld % VEC == 0;
  a.vec_q = aligned16(a.q) && a.q_ld % VEC == 0 && a.q_adapter_stride % VEC == 0;
  SA2VA_CHECK_ARG(a.m_tiles < (1LL << 31), "lora: too many rows for one launch (", a.M, ")");
  switch (rp) {
    case 16: launch_skinny_rp<T, 16>(a, stream); break;
    case 32: launch_skinny_rp<T, 32>(a, stream); break;
    case 64: launch_skinny_rp<T, 64>(a, stream); break;
    case 128: launch_skinny_rp<T, 128>(a, stream); break;
    case 256: launch_skinny_rp<T, 256>(a, stream); break;
    default: fail_arg(str_cat("lora: internal error, padded rank ", rp));
  }
}

// Split of the reduction of a lowrank_kernel product: one full wave of resident blocks, but fp32 partials no larger
// than half of the bytes of x (the operand the kernel streams) and at least two chunks per split, so that every
// block overlaps loads with products.
struct LowRankPlan {
  int rp, splits;
  int64_t k_per_split, m_tiles;
  int64_t partial_bytes() const { return splits > 1 ? static_cast<int64_t>(splits) * m_tiles * rp * 4 * bm() : 0; }
  int bm() const { return rp >= 64 ? LowRankCfg<64>::BM : LowRankCfg<16>::BM; }
};

LowRankPlan plan_lowrank(int rp, int64_t M, int64_t K) {
  LowRankPlan p;
  p.rp = rp;
  const int kc = rp >= 64 ? LowRankCfg<64>::KC : LowRankCfg<16>::KC;
  const int per_sm = rp >= 32 ? LowRankCfg<32>::MIN_BLOCKS : LowRankCfg<16>::MIN_BLOCKS;
  p.m_tiles = ceil_div(M, p.bm());
  const int64_t chunks = ceil_div(K, kc);
  const int64_t want = per_sm * static_cast<int64_t>(device_sm_count()) / p.m_tiles;  // at most one wave
  const int64_t by_traffic = (K * 2) / (8LL * rp);  // partials: splits·M·rp·4 <= M·K·2 / 2
  const int64_t by_chunks = chunks / 2;
  const int64_t s = std::max<int64_t>(1, std::min<int64_t>({want, by_traffic, by_chunks, 64}));
  p.k_per_split = ceil_div(chunks, s) * kc;
  p.splits = static_cast<int>(ceil_div(K, p.k_per_split));
  return p;
}

template <typename T, int RP, bool X_T>
void launch_lowrank_rp(const LowRankArgs& a, cudaStream_t stream) {
  static std::atomic<bool> allowed[64];
  constexpr int smem = lowrank_smem_bytes<RP, X_T>();
  allow_smem(lowrank_kernel<T, RP, X_T>, smem, allowed);
  dim3 grid(static_cast<unsigned>(a.m_tiles), static_cast<unsigned>(a.splits));
  launch_kernel_smem(lowrank_kernel<T, RP, X_T>, grid, smem, stream, "lora lowrank_kernel", a);
}

template <typename T, bool X_T>
void launch_lowrank(LowRankArgs a, const LowRankPlan& plan, cudaStream_t stream) {
  constexpr int VEC = vec_of<T>();
  a.splits = plan.splits;
  a.k_per_split = plan.k_per_split;
  a.m_tiles = plan.m_tiles;
  a.vec_x = aligned16(a.x) && a.x_ld % VEC == 0;
  a.vec_q = aligned16(a.q) && a.q_ld % VEC == 0;
  SA2VA_CHECK_ARG(a.m_tiles < (1LL << 31) && a.splits <= 65535, "lora: operand too large for one launch (", a.M,
                  " x ", a.K, ")");
  if constexpr (!is_16bit<T>()) {
    fail_arg("lora: internal error, lowrank_kernel for fp32");  // use_lowrank() keeps fp32 on cuBLAS
  } else {
    switch (plan.rp) {
      case 16: launch_lowrank_rp<T, 16, X_T>(a, stream); break;
      case 32: launch_lowrank_rp<T, 32, X_T>(a, stream); break;
      case 64: launch_lowrank_rp<T, 64, X_T>(a, stream); break;
      case 128: launch_lowrank_rp<T, 128, X_T>(a, stream); break;
      default: fail_arg(str_cat("lora: internal error, lowrank_kernel for padded rank ", plan.rp));
    }
  }
}

std::atomic<int> g_fused{-1};  // -1: decide from SA2VA_LORA_FUSED (default 0)

int fused_mode() {
  int mode = g_fused.load();
  if (mode < 0) {
    const char* env = std::getenv("SA2VA_LORA_FUSED");
    mode = (env && env[0] >= '0' && env[0] <= '3' && env[1] == 0) ? env[0] - '0' : 0;
    g_fused.store(mode);
  }
  return mode;
}

// Whether the products that read x run in lowrank_kernel (dropout fused) instead of cuBLAS: 16-bit dtypes with
// r <= 128, in mode 1 only where there is a dropout to fuse. Modes (lora_set_fused): 0 cuBLAS everywhere, the
// default: on the H200 (RESULTS.md, run 3 of 2026-12-03) the fused kernels were slower than cuBLAS + the keep⊙x
// pass at every shape, 1.00-1.29x per product at r = 16 and 1.7-3.8x at r = 128, so they are opt-in, kept for
// measurements; 1 ours where there is a dropout; 2 ours at p = 0 too; 3 as 1 but dx's term on cuBLAS + the mask pass.
bool use_lowrank(int dtype, int64_t rank, uint32_t p16, int64_t d_in) {
  const int mode = fused_mode();
  // the kernel addresses a tile's rows (<= 128 of x) with 32-bit offsets
  if (dtype == F32 || rank_pad(rank) > 128 || d_in >= (1LL << 31) / 128) return false;
  return mode == 2 || ((mode == 1 || mode == 3) && p16 != 0);
}

// Whether dx's low-rank term is written masked by masked_expand_kernel (instead of a cuBLAS GEMM and the in-place
// mask): with dropout, 16-bit, r <= 128, modes 1 and 2.
bool use_masked_dx(int dtype, int64_t rank, uint32_t p16) {
  const int mode = fused_mode();
  return p16 != 0 && dtype != F32 && rank_pad(rank) <= 128 && (mode == 1 || mode == 2);
}

template <typename T, int RP>
void launch_masked_expand_rp(const MaskedExpandArgs& a, dim3 grid, cudaStream_t stream) {
  static std::atomic<bool> allowed[64];
  constexpr int smem = me_smem_bytes<RP>();
  allow_smem(masked_expand_kernel<T, RP>, smem, allowed);
  launch_kernel_smem(masked_expand_kernel<T, RP>, grid, smem, stream, "lora masked_expand_kernel", a);
}

template <typename T>
void launch_masked_expand(MaskedExpandArgs a, cudaStream_t stream) {
  constexpr int VEC = vec_of<T>();
  a.vec_ds = aligned16(a.ds) && a.R % VEC == 0;
  a.vec_a = aligned16(a.a) && a.N % VEC == 0;
  a.vec_out = aligned16(a.out) && a.N % VEC == 0;
  const int64_t m_tiles = ceil_div(a.M, kMeBM);
  a.n_tiles = ceil_div(a.N, kMeBN);
  // two resident blocks per SM, one wave; the column tiles of a row tile are shared among n_groups blocks
  a.n_groups = static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>({2LL * device_sm_count() / m_tiles, a.n_tiles, 65535})));
  SA2VA_CHECK_ARG(m_tiles < (1LL << 31), "lora: too many rows for one launch (", a.M, ")");
  const dim3 grid(static_cast<unsigned>(m_tiles), static_cast<unsigned>(a.n_groups));
  if constexpr (!is_16bit<T>()) {
    fail_arg("lora: internal error, masked_expand_kernel for fp32");  // use_masked_dx() keeps fp32 on cuBLAS
  } else {
    switch (rank_pad(a.R)) {
      case 16: launch_masked_expand_rp<T, 16>(a, grid, stream); break;
      case 32: launch_masked_expand_rp<T, 32>(a, grid, stream); break;
      case 64: launch_masked_expand_rp<T, 64>(a, grid, stream); break;
      case 128: launch_masked_expand_rp<T, 128>(a, grid, stream); break;
      default: fail_arg(str_cat("lora: internal error, masked_expand_kernel for rank ", a.R));
    }
  }
}

template <typename T>
void launch_expand(ExpandArgs a, cudaStream_t stream) {
  constexpr int VEC = vec_of<T>();
  a.vec_s = aligned16(a.s) && a.s_ld % VEC == 0;
  a.vec_q = aligned16(a.q) && a.q_ld % VEC == 0 && a.q_adapter_stride % VEC == 0;
  a.vec_out = aligned16(a.out) && a.out_ld % VEC == 0;
  a.vec_bias = aligned16(a.bias);
  const int64_t gm = ceil_div(a.M, kExBM), gn = ceil_div(a.N, kExBN);
  SA2VA_CHECK_ARG(gm < (1LL << 31) && gn <= 65535, "lora: output too large for one launch (", a.M, " x ", a.N, ")");
  dim3 grid(static_cast<unsigned>(gm), static_cast<unsigned>(gn));
  if (expand_kc<T>(a.R) == 64) {
    if (a.q_t) launch_kernel(expand_kernel<T, true, expand_kc<T>(64)>, grid, stream, "lora expand_kernel", a);
    else launch_kernel(expand_kernel<T, false, expand_kc<T>(64)>, grid, stream, "lora expand_kernel", a);
  } else {
    if (a.q_t) launch_kernel(expand_kernel<T, true, 32>, grid, stream, "lora expand_kernel", a);
    else launch_kernel(expand_kernel<T, false, 32>, grid, stream, "lora expand_kernel", a);
  }
}

void check_cuda_args(const char* fn, int dtype, int64_t rows, int64_t d_in, int64_t d_out, int64_t rank, float p) {
  SA2VA_CHECK_ARG(dtype == F32 || dtype == F16 || dtype == BF16, fn, ": dtype ", dtype_name(dtype),
                  " not supported on CUDA (float32, float16, bfloat16)");
  SA2VA_CHECK_ARG(rows >= 1 && d_in >= 1 && d_out >= 1, fn, ": need rows, d_in, d_out >= 1, got rows=", rows,
                  " d_in=", d_in, " d_out=", d_out);
  SA2VA_CHECK_ARG(rank >= 1 && rank <= kLoraMaxRank, fn, ": rank must be in [1, ", kLoraMaxRank, "], got ", rank);
  SA2VA_CHECK_ARG(p >= 0.0f && p < 1.0f, fn, ": dropout p must be in [0, 1), got ", p);
}

// ------------------------------------------------------------------------------------------------------------
// cuBLAS for the single-adapter products.
//
// Why: the H200 profile and device times of our hand-written skinny/expand kernels (benchmarks/RESULTS.md, "Profile
// of the first kernels") had them at 4-17 % of DRAM bandwidth, and a plain composition of cuBLAS calls (the
// Unsloth-style baseline) beat them end to end. cuBLAS's kernels for these shapes (one GEMM dimension = r) are
// near the memory roofline. What stays ours is what cuBLAS cannot do: the Philox dropout regenerated from a seed
// (never stored), written transiently into the per-stream workspace; the in-place mask on dx; the bias start
// value; the multi-adapter inference kernels; and the beta = 1 accumulation scheme (the caller's base GEMM adds
// onto the buffer written here, and the gradients accumulate with beta = 1 in fp32).
//
// cuBLAS is loaded at run time (dlopen) rather than linked: the library then loads on machines without it (CPU
// use, CUDA kernels of other modules) and needs no cuBLAS headers to build; in a process with libtorch on CUDA it
// is the copy libtorch already loaded. The few declarations below are cuBLAS's ABI (cublas_api.h,
// library_types.h). Row-major buffers are handed to column-major cuBLAS as their transposes.
enum : int { kBlasOpN = 0, kBlasOpT = 1 };
enum : int { kCudaR32F = 0, kCudaR16F = 2, kCudaR16BF = 14 };
constexpr int kBlasCompute32F = 68;  // CUBLAS_COMPUTE_32F: fp32 accumulation, no TF32 (fp32's 1e-5 contract)
constexpr int kBlasGemmDefault = -1;

int cuda_type_of(int dtype) { return dtype == F32 ? kCudaR32F : dtype == F16 ? kCudaR16F : kCudaR16BF; }

#ifdef SA2VA_CUDA_EMULATION
// Emulation (native/src/test/cpp): a reference column-major GemmEx with fp32 accumulation, so that the operand
// layouts, leading dimensions and transposes of the calls below are tested on the CPU.
float blas_get(const void* p, int type, int64_t i) {
  if (type == kCudaR32F) return static_cast<const float*>(p)[i];
  if (type == kCudaR16F) return __half2float(static_cast<const __half*>(p)[i]);
  return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
}
void blas_put(void* p, int type, int64_t i, float v) {
  if (type == kCudaR32F) static_cast<float*>(p)[i] = v;
  else if (type == kCudaR16F) static_cast<__half*>(p)[i] = __float2half_rn(v);
  else static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
}
void blas_gemm(cudaStream_t, int ta, int tb, int m, int n, int k, float alpha, const void* A, int at, int lda,
               const void* B, int bt, int ldb, float beta, void* C, int ct, int ldc, const char*) {
  if (lda < (ta == kBlasOpN ? m : k) || ldb < (tb == kBlasOpN ? k : n) || ldc < m) {
    std::fprintf(stderr, "emu: blas_gemm leading dimension too small\n");
    std::abort();
  }
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      float acc = 0.0f;
      for (int l = 0; l < k; ++l) {
        const float av = blas_get(A, at, ta == kBlasOpN ? i + static_cast<int64_t>(l) * lda : l + static_cast<int64_t>(i) * lda);
        const float bv = blas_get(B, bt, tb == kBlasOpN ? l + static_cast<int64_t>(j) * ldb : j + static_cast<int64_t>(l) * ldb);
        acc += av * bv;
      }
      const int64_t c = i + static_cast<int64_t>(j) * ldc;
      blas_put(C, ct, c, alpha * acc + (beta != 0.0f ? beta * blas_get(C, ct, c) : 0.0f));
    }
}
#else
struct BlasApi {
  int (*create)(void**) = nullptr;
  int (*set_stream)(void*, cudaStream_t) = nullptr;
  int (*gemm_ex)(void*, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                 const void*, void*, int, int, int, int) = nullptr;
  std::string error;
};

const BlasApi& blas_api() {
  static const BlasApi api = [] {
    BlasApi b;
    void* lib = nullptr;
    for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) {
      lib = dlopen(name, RTLD_NOW | RTLD_NOLOAD);  // the copy libtorch loaded, if any
      if (!lib) lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (lib) break;
    }
    if (!lib) {
      b.error = "libcublas.so.13 / .12 not found (load libtorch for CUDA first, or put cuBLAS on LD_LIBRARY_PATH)";
      return b;
    }
    b.create = reinterpret_cast<decltype(b.create)>(dlsym(lib, "cublasCreate_v2"));
    b.set_stream = reinterpret_cast<decltype(b.set_stream)>(dlsym(lib, "cublasSetStream_v2"));
    b.gemm_ex = reinterpret_cast<decltype(b.gemm_ex)>(dlsym(lib, "cublasGemmEx"));
    if (!b.create || !b.set_stream || !b.gemm_ex) b.error = "cuBLAS found but without cublasCreate_v2/SetStream_v2/GemmEx";
    return b;
  }();
  return api;
}

// One handle per (thread, device): cuBLAS handles must not be used by two threads at once.
void* blas_handle(const BlasApi& api) {
  thread_local std::map<int, void*> handles;
  int dev = 0;
  SA2VA_CUDA_CHECK(cudaGetDevice(&dev));
  void*& h = handles[dev];
  if (!h) {
    const int st = api.create(&h);
    if (st != 0) {
      h = nullptr;
      throw std::runtime_error(str_cat("lora: cublasCreate failed with status ", st));
    }
  }
  return h;
}

void blas_gemm(cudaStream_t stream, int ta, int tb, int m, int n, int k, float alpha, const void* A, int at, int lda,
               const void* B, int bt, int ldb, float beta, void* C, int ct, int ldc, const char* what) {
  const BlasApi& api = blas_api();
  if (!api.error.empty()) throw std::runtime_error(str_cat("lora (", what, "): ", api.error));
  void* h = blas_handle(api);
  int st = api.set_stream(h, stream);
  if (st == 0)
    st = api.gemm_ex(h, ta, tb, m, n, k, &alpha, A, at, lda, B, bt, ldb, &beta, C, ct, ldc, kBlasCompute32F,
                     kBlasGemmDefault);
  if (st != 0)
    throw std::runtime_error(str_cat("lora (", what, "): cublasGemmEx failed with status ", st, " (m=", m, " n=", n,
                                     " k=", k, ")"));
}
#endif

int blas_dim(int64_t v, const char* what) {
  SA2VA_CHECK_ARG(v <= INT32_MAX, "lora: ", what, " = ", v, " exceeds cuBLAS's 32-bit dimensions");
  return static_cast<int>(v);
}

// Elementwise launches: enough blocks for a few waves, the rest by grid stride.
dim3 elementwise_grid(int64_t n, int vec) {
  const int64_t blocks = ceil_div(ceil_div(n, vec), kThreads);
  return dim3(static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(blocks, 8LL * device_sm_count()))));
}

template <typename T>
void launch_dropout_apply(const void* in, void* out, int64_t n, uint64_t seed, uint64_t offset, uint32_t p16,
                          cudaStream_t stream) {
  const bool vec_ok = aligned16(in) && aligned16(out);
  launch_kernel(dropout_apply_kernel<T>, elementwise_grid(n, vec_of<T>()), stream, "lora dropout_apply_kernel",
                static_cast<const T*>(in), static_cast<T*>(out), n, seed, offset, p16, vec_ok);
}

// Multi-adapter inference: our kernels (cuBLAS has no per-row choice of operand).
template <typename T>
void forward_multi_typed(const void* x, int dtype, int64_t rows, int64_t d_in, int64_t d_out, int64_t rank,
                         const void* A, const void* B, const void* bias, const int64_t* adapter_index,
                         int64_t n_adapters, const float* adapter_scales, float p, uint64_t seed, uint64_t offset,
                         void* xs, void* y, cudaStream_t stream) {
  const int rp = rank_pad(rank);
  const SkinnyPlan shrink = plan_skinny(rows, d_in, rp, elem_size(dtype), false, true);
  const ForwardLayout l = forward_layout(dtype, rows, d_in, rank, xs != nullptr, shrink.partial_floats() * rp * 4, false);
  const StreamWorkspace ws = stream_workspace(stream, static_cast<size_t>(shrink.m_tiles), static_cast<size_t>(l.total));
  char* w = static_cast<char*>(ws.scratch);
  if (!xs) xs = w + l.xs_off;
  const uint32_t p16 = lora_dropout_p16(p);

  SkinnyArgs s{};
  s.p = x; s.p_ld = d_in; s.p_cols = false; s.M = rows; s.K = d_in;
  s.q = A; s.q_ld = d_in; s.q_t = true; s.q_adapter_stride = rank * d_in; s.R = static_cast<int>(rank);
  s.dropout = p16 != 0; s.p16 = p16; s.seed = seed; s.offset = offset;
  s.adapter = adapter_index; s.n_adapters = n_adapters; s.adapter_scale = adapter_scales;
  // the dropout rescale 1/(1-p') is folded into the row scale, so kept values are never rounded twice
  s.scale = lora_dropout_scale(p16);
  s.partial = reinterpret_cast<float*>(w + l.partial_off);
  s.counters = ws.counters;
  s.out = xs; s.out_ld = rank;
  launch_skinny<T>(s, shrink, rp, stream);

  ExpandArgs e{};
  e.s = xs; e.s_ld = rank; e.M = rows; e.N = d_out; e.R = static_cast<int>(rank);
  e.q = B; e.q_ld = rank; e.q_t = true; e.q_adapter_stride = d_out * rank;
  e.adapter = adapter_index; e.n_adapters = n_adapters;
  e.bias = bias; e.dropout = false; e.scale = 1.0f;
  e.out = y; e.out_ld = d_out; e.accumulate = false;
  launch_expand<T>(e, stream);
}

// The two products that read x, where the dropout mask goes: xs = s·drop(x)·Aᵀ (forward, X_T = false, q = A with
// ld d_in, out = xs in the dtype) and dA += s·dsᵀ·drop(x) (backward, X_T = true, q = ds with ld r, out = fp32 grad A).
// fused (use_lowrank()): lowrank_kernel with `plan`, partials and counters; otherwise cuBLAS, on x or, with dropout,
// on drop(x) written to xd first. The dimensions were checked by the caller with blas_dim().
template <typename T, bool X_T>
void lowrank_product(bool fused, const LowRankPlan& plan, const void* x, const void* q, int64_t rows, int64_t d_in,
                     int64_t rank, int ct, float s, uint32_t p16, uint64_t seed, uint64_t offset, float* partial,
                     unsigned* counters, void* xd, void* out, cudaStream_t stream) {
  if (fused) {
    LowRankArgs a{};
    a.x = x; a.x_ld = d_in; a.q = q; a.q_ld = X_T ? rank : d_in;
    a.M = X_T ? d_in : rows; a.K = X_T ? rows : d_in; a.R = static_cast<int>(rank);
    a.dropout = p16 != 0; a.p16 = p16; a.seed = seed; a.offset = offset; a.scale = s;
    a.partial = partial; a.counters = counters;
    a.out = out; a.out_ld = X_T ? d_in : rank;
    launch_lowrank<T, X_T>(a, plan, stream);
    return;
  }
  const void* xin = x;
  if (p16 != 0) {
    launch_dropout_apply<T>(x, xd, rows * d_in, seed, offset, p16, stream);
    xin = xd;
  }
  const int R = static_cast<int>(rank), T_ = static_cast<int>(rows), DI = static_cast<int>(d_in);
  if constexpr (X_T)
    blas_gemm(stream, kBlasOpN, kBlasOpT, DI, R, T_, s, xin, ct, DI, q, ct, R, 1.0f, out, kCudaR32F, DI,
              "dA += s·dsᵀ·drop(x)");
  else
    blas_gemm(stream, kBlasOpT, kBlasOpN, R, T_, DI, s, q, ct, DI, xin, ct, DI, 0.0f, out, ct, R,
              "xs = s·drop(x)·Aᵀ");
}

// Single adapter (training and inference):
//   xs = s/(1-p')·(keep⊙x)·Aᵀ     with dropout (16-bit, r <= 128): lowrank_kernel, the mask applied while x is copied
//                                 otherwise GemmEx(T, N): m = r, n = rows, k = d_in, on x or on keep⊙x written to
//                                 the workspace by dropout_apply_kernel (fp32, r > 128); rounded once to the dtype
//   y  = xs·Bᵀ (+ bias)           GemmEx(T, N): m = d_out, n = rows, k = r; with a bias, beta = 1 onto rows of bias
//                                 written first
template <typename T>
void forward_typed(const void* x, int dtype, int64_t rows, int64_t d_in, int64_t d_out, int64_t rank,
                   const void* A, const void* B, const void* bias, float scale, float p, uint64_t seed,
                   uint64_t offset, void* xs, void* y, cudaStream_t stream) {
  const uint32_t p16 = lora_dropout_p16(p);
  const bool fused = use_lowrank(dtype, rank, p16, d_in);
  const LowRankPlan plan = fused ? plan_lowrank(rank_pad(rank), rows, d_in) : LowRankPlan{};
  const ForwardLayout l = forward_layout(dtype, rows, d_in, rank, xs != nullptr, fused ? plan.partial_bytes() : 0,
                                         !fused && p16 != 0);
  const StreamWorkspace ws = stream_workspace(stream, fused ? static_cast<size_t>(plan.m_tiles) : 1,
                                              static_cast<size_t>(l.total));
  char* w = static_cast<char*>(ws.scratch);
  if (!xs) xs = w + l.xs_off;
  const int ct = cuda_type_of(dtype);
  const int R = blas_dim(rank, "rank"), T_ = blas_dim(rows, "rows");
  blas_dim(d_in, "d_in");  // for lowrank_product's GEMM
  const int DO = blas_dim(d_out, "d_out");
  blas_dim(rows * std::max(d_in, d_out), "rows x d");
  const float s = scale * lora_dropout_scale(p16);
  lowrank_product<T, false>(fused, plan, x, A, rows, d_in, rank, ct, s, p16, seed, offset,
                            reinterpret_cast<float*>(w + l.partial_off), ws.counters, w + l.xd_off, xs, stream);
  float beta = 0.0f;
  if (bias) {
    constexpr int VEC = vec_of<T>();
    const bool vec_ok = aligned16(bias) && aligned16(y) && d_out % VEC == 0;
    launch_kernel(bias_rows_kernel<T>, elementwise_grid(rows * d_out, VEC), stream, "lora bias_rows_kernel",
                  static_cast<const T*>(bias), static_cast<T*>(y), rows, d_out, vec_ok);
    beta = 1.0f;
  }
  blas_gemm(stream, kBlasOpT, kBlasOpN, DO, T_, R, 1.0f, B, ct, R, xs, ct, R, beta, y, ct, DO, "y = xs·Bᵀ + bias");
}

// Backward (single adapter), fp32 accumulation throughout:
//   ds  = dY·B                     GemmEx(N, N): m = r, n = rows, k = d_out          (workspace, dtype)
//   dB += dYᵀ·xs                   GemmEx(N, T): m = r, n = d_out, k = rows, beta = 1 (fp32)
//   dA += s/(1-p')·dsᵀ·(keep⊙x)    with dropout (16-bit, r <= 128): lowrank_kernel, keep regenerated while x is
//                                  copied; otherwise GemmEx(N, T): m = d_in, n = r, k = rows, beta = 1 (fp32), on x
//                                  or on keep⊙x regenerated into the workspace
//   dx  = s/(1-p')·(ds·A)⊙keep     with dropout (16-bit, r <= 128): masked_expand_kernel, the mask in its epilogue;
//                                  otherwise GemmEx(N, N): m = d_in, n = rows, k = r, then ⊙keep in place
template <typename T>
void backward_typed(const void* x, const void* dy, const void* xs, int dtype, int64_t rows, int64_t d_in,
                    int64_t d_out, int64_t rank, const void* A, const void* B, float scale, float p, uint64_t seed,
                    uint64_t offset, float* gA, float* gB, void* dx, cudaStream_t stream) {
  const uint32_t p16 = lora_dropout_p16(p);
  const bool fused = use_lowrank(dtype, rank, p16, d_in);
  const LowRankPlan plan = fused ? plan_lowrank(rank_pad(rank), d_in, rows) : LowRankPlan{};
  const BackwardLayout l = backward_layout(dtype, rows, d_in, rank, fused ? plan.partial_bytes() : 0,
                                           !fused && p16 != 0);
  const StreamWorkspace ws = stream_workspace(stream, fused ? static_cast<size_t>(plan.m_tiles) : 1,
                                              static_cast<size_t>(l.total));
  char* w = static_cast<char*>(ws.scratch);
  void* ds = w + l.ds_off;
  const float s = scale * lora_dropout_scale(p16);
  const int ct = cuda_type_of(dtype);
  const int R = blas_dim(rank, "rank"), T_ = blas_dim(rows, "rows"), DI = blas_dim(d_in, "d_in"),
            DO = blas_dim(d_out, "d_out");
  blas_dim(rows * std::max(d_in, d_out), "rows x d");

  blas_gemm(stream, kBlasOpN, kBlasOpN, R, T_, DO, 1.0f, B, ct, R, dy, ct, DO, 0.0f, ds, ct, R, "ds = dY·B");
  blas_gemm(stream, kBlasOpN, kBlasOpT, R, DO, T_, 1.0f, xs, ct, R, dy, ct, DO, 1.0f, gB, kCudaR32F, R,
            "dB += dYᵀ·xs");
  // the partials of the fused product and the cuBLAS path's drop(x) share the space after ds
  lowrank_product<T, true>(fused, plan, x, ds, rows, d_in, rank, ct, s, p16, seed, offset,
                           reinterpret_cast<float*>(w + l.xd_off), ws.counters, w + l.xd_off, gA, stream);
  if (use_masked_dx(dtype, rank, p16)) {
    MaskedExpandArgs e{};
    e.ds = ds; e.a = A; e.M = rows; e.N = d_in; e.R = R;
    e.p16 = p16; e.seed = seed; e.offset = offset; e.scale = s; e.out = dx;
    launch_masked_expand<T>(e, stream);
  } else {
    blas_gemm(stream, kBlasOpN, kBlasOpN, DI, T_, R, s, A, ct, DI, ds, ct, R, 0.0f, dx, ct, DI, "dx = s·(ds·A)");
    if (p16 != 0) launch_dropout_apply<T>(dx, dx, rows * d_in, seed, offset, p16, stream);
  }
}

}  // namespace

void lora_set_pdl(int mode) { pdl_switch_set(g_pdl, mode); }

void lora_set_fused(int mode) { g_fused.store(mode < 0 || mode > 3 ? -1 : mode); }

void lora_forward_cuda(const void* x, int dtype, int64_t rows, int64_t d_in, int64_t d_out, int64_t rank,
                       const void* lora_a, const void* lora_b, const void* bias, float scale,
                       const int64_t* adapter_index, int64_t n_adapters, const float* adapter_scales,
                       float dropout_p, uint64_t seed, uint64_t offset, void* xs, void* y, cudaStream_t stream) {
  const char* fn = "lora_forward_cuda";
  SA2VA_CHECK_ARG(x && lora_a && lora_b && y, fn, ": null pointer");
  check_cuda_args(fn, dtype, rows, d_in, d_out, rank, dropout_p);
  SA2VA_CHECK_ARG(!adapter_index || (n_adapters >= 1 && adapter_scales), fn,
                  ": adapter_index needs n_adapters >= 1 and adapter_scales");
  switch (dtype) {
#define SA2VA_LORA_FWD(DT, T)                                                                                      \
  case DT:                                                                                                         \
    if (adapter_index)                                                                                             \
      forward_multi_typed<T>(x, dtype, rows, d_in, d_out, rank, lora_a, lora_b, bias, adapter_index, n_adapters,   \
                             adapter_scales, dropout_p, seed, offset, xs, y, stream);                              \
    else                                                                                                           \
      forward_typed<T>(x, dtype, rows, d_in, d_out, rank, lora_a, lora_b, bias, scale, dropout_p, seed, offset, xs, \
                       y, stream);                                                                                 \
    break;
    SA2VA_LORA_FWD(F32, float)
    SA2VA_LORA_FWD(F16, __half)
    SA2VA_LORA_FWD(BF16, __nv_bfloat16)
#undef SA2VA_LORA_FWD
    default: break;
  }
}

void lora_backward_cuda(const void* x, const void* dy, const void* xs, int dtype, int64_t rows, int64_t d_in,
                        int64_t d_out, int64_t rank, const void* lora_a, const void* lora_b, float scale,
                        float dropout_p, uint64_t seed, uint64_t offset, float* grad_a, float* grad_b, void* dx,
                        cudaStream_t stream) {
  const char* fn = "lora_backward_cuda";
  SA2VA_CHECK_ARG(x && dy && xs && lora_a && lora_b && grad_a && grad_b && dx, fn, ": null pointer");
  check_cuda_args(fn, dtype, rows, d_in, d_out, rank, dropout_p);
  switch (dtype) {
#define SA2VA_LORA_BWD(DT, T)                                                                                   \
  case DT:                                                                                                      \
    backward_typed<T>(x, dy, xs, dtype, rows, d_in, d_out, rank, lora_a, lora_b, scale, dropout_p, seed, offset, \
                      grad_a, grad_b, dx, stream);                                                              \
    break;
    SA2VA_LORA_BWD(F32, float)
    SA2VA_LORA_BWD(F16, __half)
    SA2VA_LORA_BWD(BF16, __nv_bfloat16)
#undef SA2VA_LORA_BWD
    default: break;
  }
}

void lora_merge_cuda(void* w, int dtype, int64_t d_out, int64_t d_in, int64_t rank, const float* lora_a,
                     const float* lora_b, float scale, cudaStream_t stream) {
  const char* fn = "lora_merge_cuda";
  SA2VA_CHECK_ARG(w && lora_a && lora_b, fn, ": null pointer");
  check_cuda_args(fn, dtype, 1, d_in, d_out, rank, 0.0f);
  const int64_t gx = ceil_div(d_in, 64), gy = ceil_div(d_out, 64);
  SA2VA_CHECK_ARG(gx < (1LL << 31) && gy <= 65535, fn, ": weight too large for one launch");
  dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy));
  const int r = static_cast<int>(rank);
  switch (dtype) {
    case F32: launch_kernel(merge_kernel<float>, grid, stream, "lora merge_kernel", static_cast<float*>(w), d_out, d_in, r, lora_a, lora_b, scale); break;
    case F16: launch_kernel(merge_kernel<__half>, grid, stream, "lora merge_kernel", static_cast<__half*>(w), d_out, d_in, r, lora_a, lora_b, scale); break;
    case BF16: launch_kernel(merge_kernel<__nv_bfloat16>, grid, stream, "lora merge_kernel", static_cast<__nv_bfloat16*>(w), d_out, d_in, r, lora_a, lora_b, scale); break;
    default: break;
  }
}

}  // namespace sa2va

#else  // built without nvcc

namespace sa2va {
void lora_set_pdl(int) {}
void lora_set_fused(int) {}
void lora_forward_cuda(const void*, int, int64_t, int64_t, int64_t, int64_t, const void*, const void*, const void*, float,
                       const int64_t*, int64_t, const float*, float, uint64_t, uint64_t, void*, void*, cudaStream_t) {
  fail_no_cuda("lora_forward_cuda");
}
void lora_backward_cuda(const void*, const void*, const void*, int, int64_t, int64_t, int64_t, int64_t, const void*,
                        const void*, float, float, uint64_t, uint64_t, float*, float*, void*, cudaStream_t) {
  fail_no_cuda("lora_backward_cuda");
}
void lora_merge_cuda(void*, int, int64_t, int64_t, int64_t, const float*, const float*, float, cudaStream_t) {
  fail_no_cuda("lora_merge_cuda");
}
}  // namespace sa2va

#endif
