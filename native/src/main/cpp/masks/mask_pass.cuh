// The CUDA mask pass: one launch computes per-sample totals and runs the per-sample epilogue.
//
// Grid = N samples x `bps` blocks per sample (1-D), at most one wave of resident blocks. Vector path (P % 8 == 0,
// aligned rows): each thread takes batches of chunks of 8 pixels (16-byte loads of 2-byte logits, 2 x 16 bytes
// of fp32, 8 bytes of uint8 masks, 1 byte of packed bits) and issues all loads of a batch before any math, so
// that enough bytes are in flight to stream at the card's bandwidth. Statistics of logits without BCE (rewards,
// confusion(), which skips the sigmoid) take reward_kernel: only that per-pixel code, and for targets without a
// region of interest a loop over full batches with no per-chunk checks (the same counts; the soft sums with one
// reciprocal per two pixels, see logit_sums_pairs). Scalar path (any P, unaligned rows): one chunk at a time,
// element loads. Counts stay in 32-bit registers and sums in double (float sums of a chunk, or of a batch in the
// full-batch loop, so the soft sums stay within ~1e-7 of fp64 for a chunk and 2e-6 at worst for a batch, whatever
// P).
// Blocks reduce in a fixed order, store a partial per block and the last block of each sample (counter in the
// stream workspace, reset by that block) sums the partials in block order and writes the outputs: no memset,
// no second kernel, no atomics on results, and deterministic for a given device and shape.
#pragma once
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <type_traits>
#include "mask_pass.h"
#include "../common/cuda_check.cuh"
#include "../common/errors.h"
#include "../common/last_block.cuh"
#include "../common/pdl.cuh"
#include "../common/workspace.h"

namespace sa2va {
namespace maskpass {

constexpr int kThreads = 256;
constexpr int kAcc = 9;  // tp, fp, fn, cnt, invalid target, invalid prediction, f0, f1, f2

struct PackedTag {};  // prediction type of bit-packed masks

struct Args {
  const void* pred; int pred_kind;
  const uint8_t* target; int target_kind;
  const uint8_t* roi; int roi_kind;
  int64_t n, p, group, pitch;
  float threshold, inv_tau;
  uint64_t seed, offset;
  int normalize, want_bce;
  float pos_weight;
  const uint8_t* bits_in;  // MODE_EVAL: the samples
  uint8_t* bits_out;       // MODE_SAMPLE: the samples
  float* per_pixel;        // MODE_EVAL: optional per-pixel log pi
  MaskSpec spec;
  MaskOut out;
  int64_t bps;
  double* partials;
  unsigned* counters;
};

// ---- loads ------------------------------------------------------------------------------------------------
__device__ __forceinline__ float h2f(uint32_t bits16) { return __half2float(__ushort_as_half(static_cast<unsigned short>(bits16))); }

__device__ __forceinline__ void load8_vec(const float* row, int64_t c, float* v) {
  const float4* q = reinterpret_cast<const float4*>(row) + 2 * c;
  float4 a = q[0], b = q[1];
  v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}
__device__ __forceinline__ void load8_vec(const bf16_t* row, int64_t c, float* v) {
  uint4 u = reinterpret_cast<const uint4*>(row)[c];
  uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    v[2 * i] = __uint_as_float(w[i] << 16);
    v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}
__device__ __forceinline__ void load8_vec(const f16_t* row, int64_t c, float* v) {
  uint4 u = reinterpret_cast<const uint4*>(row)[c];
  uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    v[2 * i] = h2f(w[i] & 0xffffu);
    v[2 * i + 1] = h2f(w[i] >> 16);
  }
}
__device__ __forceinline__ float ld1(const float* p) { return *p; }
__device__ __forceinline__ float ld1(const bf16_t* p) { return bf16_to_float(p->bits); }
__device__ __forceinline__ float ld1(const f16_t* p) { return h2f(p->bits); }

// Pixels 8c .. 8c+valid-1 of row `row` as floats (VEC: whole chunk, aligned rows).
template <typename T, bool VEC>
__device__ __forceinline__ void load_floats(const T* base, int64_t row, int64_t p, int64_t c, int valid, float* v) {
  const T* r = base + row * p;
  if (VEC) {
    load8_vec(r, c, v);
  } else {
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      if (k >= valid) break;
      v[k] = ld1(r + 8 * c + k);
    }
  }
}

// Bits of chunk c of a mask row (see mask_bits_scalar); VEC reads the 8 bytes of a uint8 mask at once.
template <bool VEC>
__device__ __forceinline__ uint32_t load_mask_bits(const uint8_t* base, int kind, int64_t row, int64_t p,
                                                   int64_t pitch, int64_t c, int valid, uint32_t& bad) {
  if (kind == MASK_PACKED) return base[row * pitch + c] & ((1u << valid) - 1u);
  if (!VEC) return mask_bits_scalar(base, kind, row, p, c, valid, bad);
  uint2 u = *reinterpret_cast<const uint2*>(base + row * p + 8 * c);
  const bool strict = kind == MASK_U8;
  uint32_t bits = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    uint32_t b = ((i < 4 ? u.x : u.y) >> (8 * (i & 3))) & 0xffu;
    bits |= static_cast<uint32_t>(b != 0) << i;
    bad += strict & (b > 1);
  }
  return bits;
}

template <typename T, bool VEC>
__device__ __forceinline__ void store_floats(T* base, int64_t row, int64_t p, int64_t c, int valid, const float* g) {
  T* r = base + row * p + 8 * c;
  if constexpr (VEC && std::is_same<T, float>::value) {
    float4* q = reinterpret_cast<float4*>(r);
    q[0] = make_float4(g[0], g[1], g[2], g[3]);
    q[1] = make_float4(g[4], g[5], g[6], g[7]);
  } else if constexpr (VEC) {
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      w[i] = static_cast<uint32_t>(from_float<T>(g[2 * i]).bits) |
             (static_cast<uint32_t>(from_float<T>(g[2 * i + 1]).bits) << 16);
    }
    *reinterpret_cast<uint4*>(r) = make_uint4(w[0], w[1], w[2], w[3]);
  } else {
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      if (k >= valid) break;
      r[k] = from_float<T>(g[k]);
    }
  }
}

// ---- the vector path: raw 16-byte (or narrower) chunks, loaded a batch ahead of the math ------------------------
// Chunk g (= row * pitch + c; pitch = P / 8 on this path) of each input is one aligned vector: 16 bytes of 16-bit
// logits, 32 of fp32, 8 bytes of a uint8 mask, 1 byte of a packed one.
template <typename PT> struct RawPred { uint4 q; };
template <> struct RawPred<float> { uint4 q[2]; };
template <> struct RawPred<uint8_t> { uint2 q; };
template <> struct RawPred<PackedTag> { uint32_t q; };

// Every input of a pass is read exactly once, so the loads are streaming (ld.global.cs, evict-first): they do not
// push the caller's other data out of L2. Measured on the H200 (2026-12-03, benchmarks/cuda/reward_probe.cu at 32x1M
// bf16 + u8): the replica of the reward kernel 0.5-0.6 us faster than with __ldg (ld.global.nc), a plain read-only
// stream of the same bytes 22.9-23.5 us against 25.6-25.9.
template <typename T> __device__ __forceinline__ T ld_once(const T* p) { return __ldcs(p); }
__device__ __forceinline__ void ld_raw(const void* b, int64_t g, RawPred<bf16_t>& r) { r.q = ld_once(static_cast<const uint4*>(b) + g); }
__device__ __forceinline__ void ld_raw(const void* b, int64_t g, RawPred<f16_t>& r) { r.q = ld_once(static_cast<const uint4*>(b) + g); }
__device__ __forceinline__ void ld_raw(const void* b, int64_t g, RawPred<float>& r) {
  const uint4* q = static_cast<const uint4*>(b) + 2 * g;
  r.q[0] = ld_once(q);
  r.q[1] = ld_once(q + 1);
}
__device__ __forceinline__ void ld_raw(const void* b, int64_t g, RawPred<uint8_t>& r) { r.q = ld_once(static_cast<const uint2*>(b) + g); }
__device__ __forceinline__ void ld_raw(const void* b, int64_t g, RawPred<PackedTag>& r) { r.q = ld_once(static_cast<const uint8_t*>(b) + g); }

__device__ __forceinline__ void decode(const RawPred<float>& r, float* v) {
  v[0] = __uint_as_float(r.q[0].x); v[1] = __uint_as_float(r.q[0].y); v[2] = __uint_as_float(r.q[0].z); v[3] = __uint_as_float(r.q[0].w);
  v[4] = __uint_as_float(r.q[1].x); v[5] = __uint_as_float(r.q[1].y); v[6] = __uint_as_float(r.q[1].z); v[7] = __uint_as_float(r.q[1].w);
}
__device__ __forceinline__ void decode(const RawPred<bf16_t>& r, float* v) {
  const uint32_t w[4] = {r.q.x, r.q.y, r.q.z, r.q.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    v[2 * i] = __uint_as_float(w[i] << 16);
    v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}
__device__ __forceinline__ void decode(const RawPred<f16_t>& r, float* v) {
  const uint32_t w[4] = {r.q.x, r.q.y, r.q.z, r.q.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    v[2 * i] = h2f(w[i] & 0xffffu);
    v[2 * i + 1] = h2f(w[i] >> 16);
  }
}

// Bit 0 of each byte of w: 1 when that byte is non-zero (bit 7 of (w & 0x7f..) + 0x7f.. | w), no branches.
__device__ __forceinline__ uint32_t nonzero_lsb4(uint32_t w) {
  return (((((w & 0x7f7f7f7fu) + 0x7f7f7f7fu) | w) >> 7) & 0x01010101u);
}
// Number of bytes of w above 1 (invalid in a strict 0/1 mask).
__device__ __forceinline__ uint32_t big_bytes4(uint32_t w) {
  return __popc((((w & 0x7e7e7e7eu) + 0x7e7e7e7eu) | w) & 0x80808080u);
}
// Bits of one chunk of a mask from its raw vector (a uint2 of 8 bytes, or the packed byte in .x).
// With 0/1 bytes, z = x + (y << 4) has pixel k < 4 in bit 8k and pixel 4 + k in bit 8k + 4, and one multiply by
// 2^24 + 2^17 + 2^10 + 2^3 moves both to bit 24 + k and 28 + k: every partial product lands on its own bit, so
// nothing carries. Bytes above 1 (always there in 0/255 masks) first become 0/1, and are counted if invalid.
__device__ __forceinline__ uint32_t gather_bits8(uint2 u) { return ((u.x + (u.y << 4)) * 0x01020408u) >> 24; }
__device__ __forceinline__ void to_01_bytes(uint2& u, bool strict, uint32_t& bad) {
  if (strict) bad += big_bytes4(u.x) + big_bytes4(u.y);
  u.x = nonzero_lsb4(u.x);
  u.y = nonzero_lsb4(u.y);
}
__device__ __forceinline__ uint32_t raw_mask_bits(uint2 u, int kind, uint32_t& bad) {
  if (kind == MASK_PACKED) return u.x & 0xffu;
  if ((u.x | u.y) & 0xfefefefeu) to_01_bytes(u, kind == MASK_U8, bad);
  return gather_bits8(u);
}
// Bits of B uint8 chunks, chunk j in byte j: one test of the whole batch for bytes above 1 (to_01_bytes leaves
// 0/1 bytes as they are and counts only the others, so converting every chunk of the batch is exact).
template <int B>
__device__ __forceinline__ uint32_t u8_batch_bits(uint2 (&u)[B], bool strict, uint32_t& bad) {
  uint32_t any = 0;
#pragma unroll
  for (int j = 0; j < B; ++j) any |= u[j].x | u[j].y;
  if (any & 0xfefefefeu) {
#pragma unroll
    for (int j = 0; j < B; ++j) to_01_bytes(u[j], strict, bad);
  }
  uint32_t bits = 0;
#pragma unroll
  for (int j = 0; j < B; ++j) bits |= gather_bits8(u[j]) << (8 * j);
  return bits;
}
__device__ __forceinline__ uint2 ld_raw_mask(const uint8_t* base, int kind, int64_t g) {
  if (kind == MASK_PACKED) return make_uint2(ld_once(base + g), 0u);
  return ld_once(reinterpret_cast<const uint2*>(base) + g);
}

// ---- lean per-pixel math of the vector path for logits ---------------------------------------------------------
// The pass is issue-bound long before it is memory-bound if every pixel pays for generic code (bit tests of the
// region and target, a NaN test, a sigmoid with range fix-ups): the vector path of logits uses this instead.
#ifdef SA2VA_CUDA_EMULATION
inline float ex2_ftz(float x) { return std::exp2(x); }
inline float rcp_ftz(float x) { return 1.0f / x; }
#else
__device__ __forceinline__ float ex2_ftz(float x) { float y; asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x)); return y; }
__device__ __forceinline__ float rcp_ftz(float x) { float y; asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x)); return y; }
#endif
// min(x, c) that keeps a NaN x NaN (fminf would return c).
#ifdef SA2VA_CUDA_EMULATION
inline float min_nan(float x, float c) { return x != x ? x : (x < c ? x : c); }
#else
__device__ __forceinline__ float min_nan(float x, float c) { float y; asm("min.NaN.f32 %0, %1, %2;" : "=f"(y) : "f"(x), "f"(c)); return y; }
#endif

// Prediction bits (x > thr) of a whole chunk of logits; with SOFT also sigmoid sums over the region `in` (sp) and
// over region and target (spy), as stats_float_chunk. `any` is NaN when a logit is NaN (a NaN logit always makes
// it NaN; +inf and -inf together do too): the caller then counts the NaNs exactly (reload_nan_count), a slow
// path taken only then. NaNs propagate into the soft sums as in stats_float_chunk.
template <bool SOFT>
__device__ __forceinline__ uint32_t logit_sums(const float* v, float thr, uint32_t y, uint32_t in, float& sp,
                                               float& spy, float& any) {
  uint32_t h = 0;
  any = 0.0f;
#pragma unroll
  for (int k = 0; k < 8; ++k) h |= v[k] > thr ? 1u << k : 0u;  // selects of constants, summed 3 at a time
  if constexpr (SOFT) {
    float p[8];
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      // 1 / (1 + exp(-x)) without range fix-ups: x < -88 gives exp(-x) = +inf and p = 0 (the true value is below
      // 1e-38), x = +inf gives 1, x = -inf gives 0, NaN stays NaN. Two SFU operations and two others per pixel.
      const float e = ex2_ftz(v[k] * -1.4426950408889634f);  // exp(-x)
      p[k] = rcp_ftz(1.0f + e);
    }
    const uint32_t iy = in & y;
    if (in == 0xffu) {
#pragma unroll
      for (int k = 0; k < 8; ++k) sp += p[k];
      any = sp;
    } else {
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        any += p[k];
        sp += ((in >> k) & 1u) ? p[k] : 0.0f;
      }
    }
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      if ((iy >> k) & 1u) spy += p[k];  // a predicated add
    }
  } else {
#pragma unroll
    for (int k = 0; k < 8; ++k) any += v[k];
  }
  return h;
}
// logit_sums<true> of a whole chunk inside the region (in = 0xff) with one reciprocal per two pixels: the SFU does
// three operations per pair instead of four. With d = 1 + exp(-x) and u = d * 2^-126, r = 1 / (d_a u_b) gives
// p_a + p_b = (u_a + u_b) r and p_a y_a + p_b y_b = (y_a u_b + y_b u_a) r. exp(-x) is capped at 2^127 (x < -88:
// the true p is below 2^-127): u <= 2, so d_a u_b stays finite unless both are capped, and then r = 0 and both
// count as 0, as the per-pixel reciprocal (ftz) counts them; r also flushes to 0 when both p < 2^-125. One capped
// pixel next to a normal one adds at most 2^-127 to the sums. A NaN logit makes the sums NaN, as in logit_sums, but
// also where logit_sums would not (through its partner, even with y = 0): the caller then redoes the batch per
// pixel. Only for whole chunks without a region: at a row's tail or a region's edge a pixel that does not count
// would share its reciprocal with one that does.
// On the H200 (2026-12-03, RESULTS.md "Session 7"): the replica of the reward kernel 0.3-1.0 us faster at 32x1M bf16.
__device__ __forceinline__ uint32_t logit_sums_pairs(const float* v, float thr, uint32_t y, float& sp, float& spy) {
  uint32_t h = 0;
#pragma unroll
  for (int k = 0; k < 8; ++k) h |= v[k] > thr ? 1u << k : 0u;
#pragma unroll
  for (int k = 0; k < 8; k += 2) {
    const float ea = min_nan(ex2_ftz(v[k] * -1.4426950408889634f), 0x1p127f);
    const float eb = min_nan(ex2_ftz(v[k + 1] * -1.4426950408889634f), 0x1p127f);
    const float ua = fmaf(ea, 0x1p-126f, 0x1p-126f), ub = fmaf(eb, 0x1p-126f, 0x1p-126f);
    const float r = rcp_ftz((1.0f + ea) * ub);
    sp = fmaf(ua + ub, r, sp);
    const float uy = (((y >> k) & 1u) ? ub : 0.0f) + (((y >> (k + 1)) & 1u) ? ua : 0.0f);
    spy = fmaf(uy, r, spy);
  }
  return h;
}
__device__ __forceinline__ uint32_t nan_count(const float* v) {
  uint32_t n = 0;
#pragma unroll
  for (int k = 0; k < 8; ++k) n += v[k] != v[k];
  return n;
}

// Chunks per thread and batch on the vector path: all loads of a batch are issued before any math, so that
// every thread keeps U chunks (~100 bytes for bf16 + uint8) in flight; with 4 resident blocks of 256 threads
// that covers the memory latency of an SM at full bandwidth.
// fp32 predictions take two vectors per chunk: batches of 2 keep them in registers.
template <typename PT> constexpr int batch_of() { return std::is_same<PT, float>::value ? 2 : 4; }

// ---- the pass kernel -----------------------------------------------------------------------------------------
// Per-sample totals from the kAcc layout. The counts are sums of 32-bit counts in double, exact below 2^53.
// The reward kernel leaves v[8] (BCE) at 0.
__device__ __forceinline__ MaskTotals totals_from(const DSums<kAcc>& acc) {
  MaskTotals t;
  t.tp = static_cast<int64_t>(acc.v[0]);
  t.fp = static_cast<int64_t>(acc.v[1]);
  t.fn = static_cast<int64_t>(acc.v[2]);
  t.cnt = static_cast<int64_t>(acc.v[3]);
  t.bad_target = static_cast<int64_t>(acc.v[4]);
  t.bad_pred = static_cast<int64_t>(acc.v[5]);
  t.f[0] = acc.v[6];
  t.f[1] = acc.v[7];
  t.f[2] = acc.v[8];
  return t;
}

// The end of every pass kernel: the block's totals, then (last block of the sample, or the only one) the
// per-sample epilogue. LOSSES: the supervised-loss part of the epilogue may be wanted.
template <int MODE, bool kFloatPred, bool LOSSES>
__device__ __forceinline__ void finish_block(const Args& a, int64_t n, int64_t part, DSums<kAcc> acc) {
  acc = block_sum<kAcc, kThreads>(acc);
  if (a.bps > 1) {
    if (threadIdx.x == 0) {
      double* dst = a.partials + (n * a.bps + part) * kAcc;
#pragma unroll
      for (int k = 0; k < kAcc; ++k) dst[k] = acc.v[k];
    }
    if (!last_block_arrive(a.counters + n, static_cast<unsigned>(a.bps))) return;
    DSums<kAcc> t;
#pragma unroll
    for (int k = 0; k < kAcc; ++k) t.v[k] = 0.0;
    for (int64_t b = threadIdx.x; b < a.bps; b += kThreads) {
      const double* src = a.partials + (n * a.bps + b) * kAcc;
#pragma unroll
      for (int k = 0; k < kAcc; ++k) t.v[k] += load_cg(src + k);
    }
    acc = block_sum<kAcc, kThreads>(t);
    if (threadIdx.x == 0) a.counters[n] = 0u;
  }
  if (threadIdx.x == 0) {
    const MaskTotals tot = totals_from(acc);
    if constexpr (LOSSES) mask_finish(tot, n, a.n, a.p, MODE, kFloatPred, a.normalize != 0, a.spec, a.out);
    else mask_finish_scores(tot, n, a.n, a.p, MODE, kFloatPred, a.normalize != 0, a.spec, a.out);
  }
}

// Every mode and input kind; the vector path of logits without BCE (rewards, confusion()) has its own kernel below.
template <int MODE, typename PT, bool VEC>
__global__ void __launch_bounds__(kThreads) mask_pass_kernel(const Args a) {
  pdl_wait_and_release();  // launched with PDL (pdl.cuh): nothing is read before the previous grid is done
  constexpr bool kFloatPred = !(std::is_same<PT, uint8_t>::value || std::is_same<PT, PackedTag>::value);
  const int64_t n = blockIdx.x / a.bps;
  const int64_t part = blockIdx.x - n * a.bps;
  const int64_t chunks = a.pitch;
  const int64_t trow = n / a.group;
  const bool logits = a.pred_kind == PRED_LOGITS;
  uint32_t tp = 0, fp = 0, fn = 0, cnt = 0, bad = 0, badp = 0;
  double f0 = 0.0, f1 = 0.0, f2 = 0.0;
  if constexpr (VEC) {
    // P % 8 == 0 here: every chunk is whole, and chunk c of row r is vector r * pitch + c of its input.
    constexpr int kBatch = batch_of<PT>();
    const int64_t stride = a.bps * kThreads;
    const bool has_t = a.target_kind != MASK_NONE, has_r = a.roi_kind != MASK_NONE;
    for (int64_t c0 = part * kThreads + threadIdx.x; c0 < chunks; c0 += kBatch * stride) {
      RawPred<PT> raw[kBatch];
      uint2 traw[kBatch], rraw[kBatch];
      uint32_t bin[kBatch];
#pragma unroll
      for (int j = 0; j < kBatch; ++j) {
        const int64_t c = c0 + j * stride;
        traw[j] = make_uint2(0u, 0u);
        rraw[j] = make_uint2(0u, 0u);
        bin[j] = 0u;
        if (c < chunks) {
          ld_raw(a.pred, n * chunks + c, raw[j]);
          if (has_t) traw[j] = ld_raw_mask(a.target, a.target_kind, trow * chunks + c);
          if (has_r) rraw[j] = ld_raw_mask(a.roi, a.roi_kind, trow * chunks + c);
          if constexpr (MODE == MODE_EVAL) bin[j] = __ldg(a.bits_in + n * chunks + c);
        }
      }
#pragma unroll
      for (int j = 0; j < kBatch; ++j) {
        const int64_t c = c0 + j * stride;
        if (c >= chunks) break;
        uint32_t y = 0, in = 0xffu, h = 0;
        if (has_t) y = raw_mask_bits(traw[j], a.target_kind, bad);
        if (has_r) in &= raw_mask_bits(rraw[j], a.roi_kind, bad);
        if constexpr (MODE == MODE_STATS) {
          if constexpr (kFloatPred) {
            float v[8];
            decode(raw[j], v);
            FloatChunk fc = stats_float_chunk(v, 8, logits, a.threshold, y, in, a.want_bce != 0, a.pos_weight);
            h = fc.hbits;
            badp += fc.bad;
            f0 += fc.spy;
            f1 += fc.sp;
            f2 += fc.bce;
          } else if constexpr (std::is_same<PT, PackedTag>::value) {
            h = raw[j].q & 0xffu;
          } else {
            h = raw_mask_bits(raw[j].q, a.pred_kind, badp);
          }
        } else {
          float z[8];
          decode(raw[j], z);
          float lp = 0.0f, en = 0.0f;
          if constexpr (MODE == MODE_SAMPLE) {
            h = sample_chunk(z, 8, a.inv_tau, a.seed, a.offset, static_cast<uint64_t>(n * a.p + 8 * c), lp, en);
            a.bits_out[n * chunks + c] = static_cast<uint8_t>(h);
          } else {
            h = bin[j];
            eval_chunk(z, 8, h, a.inv_tau, lp, en, a.per_pixel ? a.per_pixel + n * a.p + 8 * c : nullptr);
          }
          f0 += lp;
          f1 += en;
        }
        if (has_t) {
          ChunkCounts cc = count_bits(h, y, in);
          tp += cc.tp;
          fp += cc.fp;
          fn += cc.fn;
          cnt += cc.cnt;
        }
      }
    }
  } else {
#pragma unroll 2
  for (int64_t c = part * kThreads + threadIdx.x; c < chunks; c += a.bps * kThreads) {
    const int valid = a.p - 8 * c < 8 ? static_cast<int>(a.p - 8 * c) : 8;
    uint32_t y = 0, in = (1u << valid) - 1u, h = 0;
    if (a.target_kind != MASK_NONE) y = load_mask_bits<VEC>(a.target, a.target_kind, trow, a.p, a.pitch, c, valid, bad);
    if (a.roi_kind != MASK_NONE) in &= load_mask_bits<VEC>(a.roi, a.roi_kind, trow, a.p, a.pitch, c, valid, bad);
    if constexpr (MODE == MODE_STATS) {
      if constexpr (kFloatPred) {
        float v[8];
        load_floats<PT, VEC>(static_cast<const PT*>(a.pred), n, a.p, c, valid, v);
        FloatChunk fc = stats_float_chunk(v, valid, logits, a.threshold, y, in, a.want_bce != 0, a.pos_weight);
        h = fc.hbits;
        badp += fc.bad;
        f0 += fc.spy;
        f1 += fc.sp;
        f2 += fc.bce;
      } else {
        const int kind = std::is_same<PT, PackedTag>::value ? MASK_PACKED : a.pred_kind;
        h = load_mask_bits<VEC>(static_cast<const uint8_t*>(a.pred), kind, n, a.p, a.pitch, c, valid, badp);
      }
    } else {
      float z[8];
      load_floats<PT, VEC>(static_cast<const PT*>(a.pred), n, a.p, c, valid, z);
      float lp = 0.0f, en = 0.0f;
      if constexpr (MODE == MODE_SAMPLE) {
        h = sample_chunk(z, valid, a.inv_tau, a.seed, a.offset, static_cast<uint64_t>(n * a.p + 8 * c), lp, en);
        a.bits_out[n * a.pitch + c] = static_cast<uint8_t>(h);
      } else {
        h = a.bits_in[n * a.pitch + c] & ((1u << valid) - 1u);
        eval_chunk(z, valid, h, a.inv_tau, lp, en, a.per_pixel ? a.per_pixel + n * a.p + 8 * c : nullptr);
      }
      f0 += lp;
      f1 += en;
    }
    if (a.target_kind != MASK_NONE) {
      ChunkCounts cc = count_bits(h, y, in);
      tp += cc.tp;
      fp += cc.fp;
      fn += cc.fn;
      cnt += cc.cnt;
    }
  }
  }
  DSums<kAcc> acc{{static_cast<double>(tp), static_cast<double>(fp), static_cast<double>(fn), static_cast<double>(cnt),
                   static_cast<double>(bad), static_cast<double>(badp), f0, f1, f2}};
  finish_block<MODE, kFloatPred, true>(a, n, part, acc);
}

// ---- the reward kernel ---------------------------------------------------------------------------------------
// MODE_STATS of logits on the vector path without BCE: rewards (evaluate, sample-and-score's scores) and
// confusion(). The general kernel carries every mode's per-pixel code, ~100 KB of instructions per instantiation
// with the loop body alone tens of KB (readelf of the sm_90 cubin), and on the H200 it streamed at ~1.7 TB/s even
// from L2 with ~10 us of fixed cost per call; this one holds only the lean per-pixel code and the scores'
// epilogue, and indexes rows with 32-bit offsets from per-row base pointers (P < 2^31, so chunks < 2^28).
template <typename PT> constexpr int pred_vec_bytes() {
  return std::is_same<PT, float>::value ? 32 : std::is_same<PT, uint8_t>::value ? 8 : std::is_same<PT, PackedTag>::value ? 1 : 16;
}
__device__ __forceinline__ int64_t mask_vec_bytes(int kind) { return kind == MASK_PACKED ? 1 : 8; }

// Per-thread totals of the reward kernel: counts (tp, fp, fn, cnt, invalid target, invalid prediction) and the
// soft sums (sum p*y, sum p).
struct RewardAcc { uint32_t c[6]; double f[2]; };

// Sums over the warp, valid in lane 0: the counts by one reduction instruction each (exact in 32 bits: a warp
// covers fewer than 2^31 pixels), the sums by shuffles in a fixed order.
__device__ __forceinline__ void warp_reduce(RewardAcc& a) {
#ifdef SA2VA_CUDA_EMULATION
  for (int off = 16; off > 0; off >>= 1) {  // the same sums, one exchange of the whole struct per step
    const RewardAcc o = emu_shfl_down_struct(a, off);
    for (int k = 0; k < 6; ++k) a.c[k] += o.c[k];
    for (int k = 0; k < 2; ++k) a.f[k] += o.f[k];
  }
#else
#pragma unroll
  for (int k = 0; k < 6; ++k) a.c[k] = __reduce_add_sync(0xffffffffu, a.c[k]);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
#pragma unroll
    for (int k = 0; k < 2; ++k) a.f[k] += __shfl_down_sync(0xffffffffu, a.f[k], off);
  }
#endif
}

// The block's totals in kAcc layout (tp, fp, fn, cnt, bad target, bad prediction, sum p*y, sum p, 0); component k
// summed over the warps by thread k, which stores it to dst[k] when dst is not null (the block's partial record;
// zeros are returned then), else to every thread. The stores need no fence of their own: the barrier at the end
// orders them before the release of last_block_arrive in thread 0, which publishes them to the other blocks (the
// pattern of cooperative groups' grid sync). Smaller than block_sum
// over kAcc doubles (no second warp reduction, no shuffles of the counts): this code runs cold at the start
// of every block's epilogue.
__device__ __forceinline__ DSums<kAcc> reward_block_totals(RewardAcc a, double* dst) {
  __shared__ RewardAcc s_warp[kThreads / 32];
  __shared__ DSums<kAcc> s_tot;
  warp_reduce(a);
  if ((threadIdx.x & 31) == 0) s_warp[threadIdx.x >> 5] = a;
  __syncthreads();
  if (threadIdx.x < kAcc) {
    const int k = static_cast<int>(threadIdx.x);
    double t = 0.0;
    if (k < 6) {  // counts in 32 bits (a block covers fewer than 2^31 pixels), converted once
      uint32_t c = 0;
#pragma unroll
      for (int w = 0; w < kThreads / 32; ++w) c += s_warp[w].c[k];
      t = static_cast<double>(c);
    } else if (k < 8) {
#pragma unroll
      for (int w = 0; w < kThreads / 32; ++w) t += s_warp[w].f[k - 6];
    }
    if (dst) dst[k] = t;
    else s_tot.v[k] = t;
  }
  __syncthreads();
  if (dst) return DSums<kAcc>{};  // the last block reads every partial back, its own too
  return s_tot;
}

// The per-sample epilogue of the reward kernel (scores, statistics, confusion; never losses) from kAcc totals, one
// part per thread (mask_finish_scores_part): called by threads 0 .. kFinishParts - 1, all with acc.
__device__ __forceinline__ void finish_sample_scores_part(const Args& a, int64_t n, const DSums<kAcc>& acc, int part) {
  const FinishTotals t{acc.v[0], acc.v[1], acc.v[2], acc.v[3], acc.v[4], acc.v[5], {acc.v[6], acc.v[7], acc.v[8]}};
  if (part < kFinishParts) mask_finish_scores_part(part, t, n, a.n, a.p, MODE_STATS, true, false, a.spec, a.out);
}

// NaN logits in the chunks c0 + j * stride (j < B) below `chunks`: rare, so the batch's logits are read again
// rather than held in registers until the batch's NaN test.
template <typename PT, int B>
__device__ __forceinline__ uint32_t reload_nan_count(const void* prow, int c0, int stride, int chunks) {
  uint32_t n = 0;
#pragma unroll
  for (int j = 0; j < B; ++j) {
    if (c0 + j * stride >= chunks) break;
    RawPred<PT> q;
    ld_raw(prow, c0 + j * stride, q);
    float v[8];
    decode(q, v);
    n += nan_count(v);
  }
  return n;
}

// Full batches of the reward kernel for a target without a region, uint8 (strict or not) or PACKED_T bit-packed:
// no bounds check per chunk, no tests of the mask kinds, the counts of the batch from 32-bit words (chunk j in
// byte j: tp = popc(h & y), fp = popc(h & ~y), fn = popc(~h & y), cnt = 8 per chunk), one NaN test per batch and
// the soft sums by logit_sums_pairs, per batch in float and then added in double: one conversion per batch instead
// of one per chunk (with the shorter block totals, 0.1 us at 32x1M bf16 on the H200; RESULTS.md "Session 7"); a
// float sum of 32 terms in [0, 1] is within 2e-6 (relative) of its exact value at worst. Returns the start of the
// first batch not taken: the end of the full batches, or (soft sums) the batch with a NaN logit, which the checked
// loop redoes per pixel with the rest.
template <typename PT, bool SOFT, bool PACKED_T>
__device__ __forceinline__ int reward_full_batches(const void* prow, const uint8_t* trow_p, bool strict, float thr,
                                                   int c0, int chunks, int stride, RewardAcc& r) {
  constexpr int kBatch = batch_of<PT>();
  for (; c0 + (kBatch - 1) * stride < chunks; c0 += kBatch * stride) {
    RawPred<PT> raw[kBatch];
    uint2 traw[kBatch];
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      ld_raw(prow, c0 + j * stride, raw[j]);
      traw[j] = ld_raw_mask(trow_p, PACKED_T ? MASK_PACKED : MASK_U8, c0 + j * stride);
    }
    uint32_t y = 0, h = 0, bad_t = 0;
    if constexpr (PACKED_T) {
#pragma unroll
      for (int j = 0; j < kBatch; ++j) y |= traw[j].x << (8 * j);
    } else {
      y = u8_batch_bits(traw, strict, bad_t);
    }
    bool nan = false;
    float bspy = 0.0f, bsp = 0.0f;  // the batch's soft sums (32 pixels for 16-bit logits) in float
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      float v[8];
      decode(raw[j], v);
      if constexpr (SOFT) {
        h |= logit_sums_pairs(v, thr, (y >> (8 * j)) & 0xffu, bsp, bspy) << (8 * j);
      } else {
        float sp = 0.0f, spy = 0.0f, any;
        h |= logit_sums<false>(v, thr, (y >> (8 * j)) & 0xffu, 0xffu, sp, spy, any) << (8 * j);
        nan |= any != any;
      }
    }
    // a NaN logit: nothing of this batch is kept, and the checked loop takes it and the rest per pixel
    if (SOFT && bsp != bsp) break;
    r.c[4] += bad_t;
    r.f[0] += bspy;
    r.f[1] += bsp;
    r.c[0] += __popc(h & y);
    r.c[1] += __popc(h & ~y);
    r.c[2] += __popc(~h & y);
    r.c[3] += 8 * kBatch;
    if (nan) r.c[5] += reload_nan_count<PT, kBatch>(prow, c0, stride, chunks);
  }
  return c0;
}

template <typename PT, bool SOFT>
__global__ void __launch_bounds__(kThreads, 4) reward_kernel(const Args a) {
  pdl_wait_and_release();  // launched with PDL (pdl.cuh): nothing is read before the previous grid is done
  const int bps = static_cast<int>(a.bps);
  const int n = static_cast<int>(blockIdx.x) / bps;
  const int part = static_cast<int>(blockIdx.x) - n * bps;
  const int chunks = static_cast<int>(a.pitch);
  const int64_t trow = n / static_cast<int>(a.group);
  const void* prow = static_cast<const char*>(a.pred) + static_cast<int64_t>(n) * chunks * pred_vec_bytes<PT>();
  const bool has_t = a.target_kind != MASK_NONE, has_r = a.roi_kind != MASK_NONE;
  const uint8_t* trow_p = has_t ? a.target + trow * chunks * mask_vec_bytes(a.target_kind) : nullptr;
  const uint8_t* rrow_p = has_r ? a.roi + trow * chunks * mask_vec_bytes(a.roi_kind) : nullptr;
  RewardAcc r{{0u, 0u, 0u, 0u, 0u, 0u}, {0.0, 0.0}};
  constexpr int kBatch = batch_of<PT>();
  const int stride = bps * kThreads;
  int c0 = part * kThreads + static_cast<int>(threadIdx.x);
  // the common targets without a region: full batches in a loop of their own, the rest below
  if (has_t && !has_r) {
    if (a.target_kind == MASK_PACKED) c0 = reward_full_batches<PT, SOFT, true>(prow, trow_p, false, a.threshold, c0, chunks, stride, r);
    else c0 = reward_full_batches<PT, SOFT, false>(prow, trow_p, a.target_kind == MASK_U8, a.threshold, c0, chunks, stride, r);
  }
  for (; c0 < chunks; c0 += kBatch * stride) {
    RawPred<PT> raw[kBatch];
    uint2 traw[kBatch], rraw[kBatch];
    // every load of the batch before any math
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int c = c0 + j * stride;
      traw[j] = make_uint2(0u, 0u);
      rraw[j] = make_uint2(0u, 0u);
      if (c < chunks) {
        ld_raw(prow, c, raw[j]);
        if (has_t) traw[j] = ld_raw_mask(trow_p, a.target_kind, c);
        if (has_r) rraw[j] = ld_raw_mask(rrow_p, a.roi_kind, c);
      }
    }
    bool nan = false;
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      if (c0 + j * stride >= chunks) break;
      uint32_t y = 0, in = 0xffu;
      if (has_t) y = raw_mask_bits(traw[j], a.target_kind, r.c[4]);
      if (has_r) in &= raw_mask_bits(rraw[j], a.roi_kind, r.c[4]);
      float v[8];
      decode(raw[j], v);
      float sp = 0.0f, spy = 0.0f, any;
      const uint32_t h = logit_sums<SOFT>(v, a.threshold, y, in, sp, spy, any);
      nan |= any != any;
      if constexpr (SOFT) {
        r.f[0] += spy;
        r.f[1] += sp;
      }
      if (has_t) {
        const ChunkCounts cc = count_bits(h, y, in);
        r.c[0] += cc.tp;
        r.c[1] += cc.fp;
        r.c[2] += cc.fn;
        r.c[3] += cc.cnt;
      }
    }
    if (nan) r.c[5] += reload_nan_count<PT, kBatch>(prow, c0, stride, chunks);
  }
  double* dst = bps > 1 ? a.partials + (static_cast<int64_t>(n) * bps + part) * kAcc : nullptr;
  const DSums<kAcc> acc = reward_block_totals(r, dst);
  if (bps > 1) {
    if (!last_block_arrive(a.counters + n, static_cast<unsigned>(bps))) return;
    // the last block of the sample: one warp sums the partials (a few hundred records at most) in a fixed order,
    // into every lane, and its lanes write the outputs
    if (threadIdx.x >= 32) return;
    DSums<kAcc> t;
#pragma unroll
    for (int k = 0; k < kAcc; ++k) t.v[k] = 0.0;
    for (int b = static_cast<int>(threadIdx.x); b < bps; b += 32) {
      const double* src = a.partials + (static_cast<int64_t>(n) * bps + b) * kAcc;
#pragma unroll
      for (int k = 0; k < kAcc; ++k) t.v[k] += load_cg(src + k);
    }
    warp_sum(t);
    if (threadIdx.x == 0) a.counters[n] = 0u;
    finish_sample_scores_part(a, n, t, static_cast<int>(threadIdx.x));
  } else {
    finish_sample_scores_part(a, n, acc, static_cast<int>(threadIdx.x));
  }
}

inline bool aligned_to(const void* p, uintptr_t k) { return p == nullptr || reinterpret_cast<uintptr_t>(p) % k == 0; }
inline bool is_u8_kind(int kind) { return kind == MASK_U8 || kind == MASK_U8_NONZERO; }

// Resident blocks per SM of one kernel instantiation (asked once).
template <auto KERNEL>
int resident_blocks() {
  static int cached = [] {
    int b = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, KERNEL, kThreads, 0) != cudaSuccess) {
      cudaGetLastError();
      b = 0;
    }
    return b > 0 ? b : 4;
  }();
  return cached;
}

// Full waves of resident blocks per launch (mask_set_waves; SA2VA_MASK_WAVES, 1..16). Unset: one wave. Two waves
// for large reward inputs were the default for a while (37.61 -> 36.17 us at 32x1M, 2026-12-03), but that gain came
// from hiding the slow epilogue of a kernel with a division subroutine in it (see div_nocall in mask_pass.h): without
// it one wave is faster again (RESULTS.md, "Session 6"); 4 or 8 waves were slower everywhere.
inline std::atomic<int> g_waves{0};  // 0: not read yet, 1..16: the setting (SA2VA_MASK_WAVES, else 1)
inline int pass_waves() {
  int w = g_waves.load();
  if (w == 0) {
    const char* env = std::getenv("SA2VA_MASK_WAVES");
    w = env ? std::atoi(env) : 1;
    w = w >= 1 && w <= 16 ? w : 1;
    g_waves.store(w);
  }
  return w;
}

// Blocks per sample: at most `pass_waves()` full waves of resident blocks in all (rounded down: a last wave of a
// few blocks would add the time of a whole wave), at least one, and no block without a chunk.
inline int64_t blocks_per_sample(int64_t n, int64_t chunks, int64_t resident_total) {
  const int64_t max_bps = (chunks + kThreads - 1) / kThreads;
  int64_t bps = resident_total / n;
  return bps < 1 ? 1 : (bps > max_bps ? max_bps : bps);
}

// One launch of a pass kernel: N x bps blocks (one wave by default, see pass_waves), and the stream workspace when a
// sample has several.
template <auto KERNEL>
void launch_kernel(Args a, cudaStream_t stream) {
  const int64_t one_wave = static_cast<int64_t>(device_sm_count()) * resident_blocks<KERNEL>();
  const int64_t target_blocks = one_wave * pass_waves();
  const int64_t bps = blocks_per_sample(a.n, a.pitch, target_blocks);
  a.bps = bps;
  SA2VA_CHECK_ARG(a.n * bps <= INT_MAX, "mask pass: too many samples for one launch (", a.n, ")");
  if (bps > 1) {
    StreamWorkspace ws = stream_workspace(stream, static_cast<size_t>(a.n),
                                          static_cast<size_t>(a.n * bps) * kAcc * sizeof(double));
    a.counters = ws.counters;
    a.partials = static_cast<double*>(ws.scratch);
  }
#ifdef SA2VA_CUDA_EMULATION
  SA2VA_LAUNCH(static_cast<unsigned>(a.n * bps), kThreads, stream, KERNEL)(a);
#else
  SA2VA_CUDA_CHECK(launch_pdl(KERNEL, dim3(static_cast<unsigned>(a.n * bps)), dim3(kThreads), 0, stream, rl_pdl_enabled(), a));
#endif
  SA2VA_CUDA_CHECK_LAUNCH("mask_pass_kernel");
}

// soft: the soft sums are wanted (the reward kernel skips them for counts only).
template <int MODE, typename PT>
void launch_vec(const Args& a, bool vec, bool soft, cudaStream_t stream) {
  constexpr bool kFloatStats = MODE == MODE_STATS && !(std::is_same<PT, uint8_t>::value || std::is_same<PT, PackedTag>::value);
  if (!vec) {
    launch_kernel<mask_pass_kernel<MODE, PT, false>>(a, stream);
  } else if constexpr (kFloatStats) {
    if (a.pred_kind == PRED_LOGITS && !a.want_bce) {
      if (soft) launch_kernel<reward_kernel<PT, true>>(a, stream);
      else launch_kernel<reward_kernel<PT, false>>(a, stream);
    } else {
      launch_kernel<mask_pass_kernel<MODE, PT, true>>(a, stream);
    }
  } else {
    launch_kernel<mask_pass_kernel<MODE, PT, true>>(a, stream);
  }
}

// Whether a MODE_STATS pass needs the soft sums (sum p*y, sum p, BCE) of float predictions: any output but the
// confusion counts, or scores computed from the soft sums.
inline bool needs_soft(const Args& a) {
  return a.out.stats || a.out.loss || a.out.coef || a.want_bce || (a.out.scores && a.spec.v[SPEC_SOFT] != 0.0f);
}

// Picks the instantiation for the prediction type and the vector path when every row is aligned.
template <int MODE>
void launch(Args a, int pred_dtype, cudaStream_t stream) {
  a.pitch = packed_pitch(a.p);
  const bool float_pred = MODE != MODE_STATS || a.pred_kind == PRED_LOGITS || a.pred_kind == PRED_PROBS;
  bool vec = a.p % 8 == 0;
  if (float_pred) vec = vec && aligned_to(a.pred, 16);
  else if (a.pred_kind != MASK_PACKED) vec = vec && aligned_to(a.pred, 8);
  if (is_u8_kind(a.target_kind)) vec = vec && aligned_to(a.target, 8);
  if (is_u8_kind(a.roi_kind)) vec = vec && aligned_to(a.roi, 8);
  const bool soft = MODE != MODE_STATS || needs_soft(a);
  if (float_pred) {
    switch (pred_dtype) {
      case F32: launch_vec<MODE, float>(a, vec, soft, stream); break;
      case F16: launch_vec<MODE, f16_t>(a, vec, soft, stream); break;
      case BF16: launch_vec<MODE, bf16_t>(a, vec, soft, stream); break;
      default: fail_arg(str_cat("mask pass: logits dtype ", dtype_name(pred_dtype), " not supported"));
    }
  } else if constexpr (MODE == MODE_STATS) {
    if (a.pred_kind == MASK_PACKED) launch_vec<MODE, PackedTag>(a, vec, true, stream);
    else launch_vec<MODE, uint8_t>(a, vec, true, stream);
  }
}

// ---- elementwise kernels over chunks (gradients) -----------------------------------------------------------
constexpr int kEwThreads = 256;

inline unsigned ew_blocks(int64_t total_chunks) {
  int64_t want = (total_chunks + kEwThreads - 1) / kEwThreads;
  int64_t cap = static_cast<int64_t>(device_sm_count()) * 16;
  return static_cast<unsigned>(want < cap ? (want < 1 ? 1 : want) : cap);
}

}  // namespace maskpass
}  // namespace sa2va
