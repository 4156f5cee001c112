// CUDA implementation of the fused PPO loss (see ppo_loss.h).
//
// One launch. Main pass: grid-stride over batches of 2 x 4 tokens (float4 loads when every array is aligned,
// all loads of a batch issued before the math), per-token math of ppo_math.h, gradients written in the same
// pass, sums in float per batch and in double per thread, then per block, then the last block (workspace.h)
// combines the block partials in order and writes the scalars.
// When the weights or the advantage normalisation need data-dependent totals (a token mask, or norm_adv), the
// same kernel first runs a preparatory pass (token counts per row, the mean / std of the advantages) and waits
// at a grid-wide barrier for its totals: the launch is cooperative, so every block is resident and the barrier
// cannot deadlock; the mask read by that pass is read again right after, mostly from L2. No host
// synchronisation, no second launch.
#include "ppo_loss.h"
#include "rl_checks.h"
#include "../common/errors.h"

#ifndef SA2VA_NO_CUDA
#include <cuda_runtime.h>
#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include "ppo_math.h"
#include "../common/cuda_check.cuh"
#include "../common/last_block.cuh"
#include "../common/workspace.h"

namespace sa2va {
namespace {

constexpr int kThreads = 256;
constexpr int kPrepAcc = 4;   // tokens, sum A, sum A^2, count of A
constexpr int kMainAcc = 10;  // see ppo_loss_cpu.cpp

struct PpoArgs {
  const float *logp, *logp_old, *adv;
  int adv_per_token;
  const uint8_t* mask;
  int64_t b, l;
  const float *values, *values_old, *returns, *entropy, *ref;
  PpoConsts c;
  int agg;
  float agg_const;
  int norm_adv;
  float adv_eps;
  int has_prep;
  int seg;                // lanes per row in the preparatory pass
  int prep_vec;           // the preparatory pass only counts an aligned mask with L % 16 == 0: 16-byte loads
  double host_tokens;     // without a prep launch: B * L
  float* scalars;
  float *dlogp, *dvalue, *dentropy;
  // workspace
  unsigned* counters;     // [0] prep, [1] main
  double* prep_partials;  // [blocks][kPrepAcc]
  double* globals;        // {tokens, mean, 1 / (std + eps)}
  float* rowcnt;          // [B]
  double* main_partials;  // [blocks][kMainAcc]
};

// Number of non-zero bytes of w.
__device__ __forceinline__ unsigned nonzero_bytes(uint32_t w) {
  return __popc((((w & 0x7f7f7f7fu) + 0x7f7f7f7fu) | w) & 0x80808080u);
}

// End of a preparatory pass: block sums of the token count and of the advantages' moments, then the totals
// (a.globals) once every block's partial is in. GRID: grid barrier (every block gets the totals; cooperative
// launch only); else the last block of the launch writes them for the next launch.
template <bool GRID>
__device__ __forceinline__ void prep_totals(const PpoArgs& a, double tok, double sa, double saa, double na) {
  DSums<kPrepAcc> acc{{tok, sa, saa, na}};
  acc = block_sum<kPrepAcc, kThreads>(acc);
  if (threadIdx.x == 0) {
    double* dst = a.prep_partials + blockIdx.x * kPrepAcc;
    for (int k = 0; k < kPrepAcc; ++k) dst[k] = acc.v[k];
  }
  // Grid barrier (cooperative launch): the last block to arrive computes the totals and releases the others.
  if constexpr (GRID) {
    if (!grid_arrive(a.counters + 0, a.counters + 2, a.counters + 3, gridDim.x)) return;
  } else {
    if (!last_block_arrive(a.counters + 0, gridDim.x)) return;
  }
  const DSums<kPrepAcc> tot = sum_partials<kPrepAcc>(a.prep_partials, gridDim.x);
  if (threadIdx.x == 0) {
    const double* t = tot.v;
    a.globals[0] = t[0];
    double mean = 0.0, inv = 1.0;
    if (a.norm_adv) {
      mean = t[3] > 0 ? t[1] / t[3] : 0.0;
      const double var = (t[2] - t[3] * mean * mean) / (t[3] - 1.0);
      inv = t[3] > 1 ? 1.0 / (sqrt(var > 0.0 ? var : 0.0) + a.adv_eps) : NAN;
    }
    a.globals[1] = mean;
    a.globals[2] = inv;
    if constexpr (GRID) grid_release(a.counters + 0, a.counters + 2, gridDim.x);
    else a.counters[0] = 0u;
  }
  __syncthreads();
}

// Rows are handled by segments of S lanes (S = power of two <= 32 covering L when L is short), so short rows
// do not leave most of a warp idle.
// GRID: inside the fused cooperative launch (grid barrier); else its own launch ending with a last block.
template <bool GRID>
__device__ __forceinline__ void ppo_prep_pass(const PpoArgs& a, int seg) {
  const int lane = threadIdx.x & 31, sl = lane & (seg - 1);
  const int64_t segs_per_block = kThreads / seg;
  const int64_t seg_id = static_cast<int64_t>(blockIdx.x) * segs_per_block + threadIdx.x / seg;
  const int64_t seg_stride = static_cast<int64_t>(gridDim.x) * segs_per_block;
  double tok = 0.0, sa = 0.0, saa = 0.0, na = 0.0;
  // Every lane runs the same number of iterations (rows are padded), so the shuffles see full warps.
  const int64_t rows_padded = (a.b + seg_stride - 1) / seg_stride * seg_stride;
  for (int64_t row = seg_id; row < rows_padded; row += seg_stride) {
    const bool live = row < a.b;
    unsigned cnt = 0;
    if (live && a.prep_vec) {
      // Counting only: 16 mask bytes per load, non-zero bytes counted four at a time.
      const uint4* mr = reinterpret_cast<const uint4*>(a.mask + row * a.l);
      for (int64_t q = sl; q < a.l / 16; q += seg) {
        const uint4 u = __ldg(mr + q);
        cnt += nonzero_bytes(u.x) + nonzero_bytes(u.y) + nonzero_bytes(u.z) + nonzero_bytes(u.w);
      }
    } else if (live && a.mask == nullptr && !(a.adv_per_token && a.norm_adv)) {
      cnt = sl == 0 ? static_cast<unsigned>(a.l) : 0u;
    } else if (live) {
      for (int64_t j = sl; j < a.l; j += seg) {
        const int64_t i = row * a.l + j;
        const bool m = a.mask == nullptr || a.mask[i] != 0;
        cnt += m;
        if (m && a.adv_per_token && a.norm_adv) {
          const double x = a.adv[i];
          sa += x;
          saa += x * x;
          na += 1.0;
        }
      }
    }
    tok += cnt;
    for (int off = 1; off < seg; off <<= 1) cnt += __shfl_xor_sync(0xffffffffu, cnt, off);
    if (live && sl == 0) {
      a.rowcnt[row] = static_cast<float>(cnt);
      if (!a.adv_per_token) {
        const double x = a.adv[row];
        sa += x;
        saa += x * x;
        na += 1.0;
      }
    }
  }
  prep_totals<GRID>(a, tok, sa, saa, na);
}

// The preparatory pass as its own launch (CleanRL-shaped calls, see launch_u).
__global__ void __launch_bounds__(kThreads) ppo_prep_kernel(const PpoArgs a) { ppo_prep_pass<false>(a, a.seg); }

__device__ __forceinline__ void load4(const float* p, int64_t i, bool vec, float* v) {
  if (vec) {
    float4 q = __ldg(reinterpret_cast<const float4*>(p + i));
    v[0] = q.x; v[1] = q.y; v[2] = q.z; v[3] = q.w;
  } else {
#pragma unroll
    for (int k = 0; k < 4; ++k) v[k] = p[i + k];
  }
}
__device__ __forceinline__ void store4(float* p, int64_t i, bool vec, const float* v) {
  if (vec) {
    *reinterpret_cast<float4*>(p + i) = make_float4(v[0], v[1], v[2], v[3]);
  } else {
#pragma unroll
    for (int k = 0; k < 4; ++k) p[i + k] = v[k];
  }
}

// Row of flat token index i: 32-bit division when the indices fit (a 64-bit division is ~100 instructions).
__device__ __forceinline__ int64_t row_of(int64_t i, int64_t l, bool small) {
  return small ? static_cast<int64_t>(static_cast<uint32_t>(i) / static_cast<uint32_t>(l)) : i / l;
}

// End of a main pass: block sums of the thread sums s (kMainAcc, see ppo_loss_cpu.cpp), then the last block of
// the launch writes the scalars; tokens: the number of active tokens.
__device__ __forceinline__ void main_totals(const PpoArgs& a, const double* s, double tokens) {
  DSums<kMainAcc> acc;
#pragma unroll
  for (int k = 0; k < kMainAcc; ++k) acc.v[k] = s[k];
  acc = block_sum<kMainAcc, kThreads>(acc);
  if (threadIdx.x == 0) {
    double* dst = a.main_partials + blockIdx.x * kMainAcc;
    for (int k = 0; k < kMainAcc; ++k) dst[k] = acc.v[k];
  }
  if (!last_block_arrive(a.counters + 1, gridDim.x)) return;
  const DSums<kMainAcc> tot = sum_partials<kMainAcc>(a.main_partials, gridDim.x);
  if (threadIdx.x == 0) {
    const double* t = tot.v;
    const double tk = fmax(tokens, 1.0);
    a.scalars[PS_PG] = static_cast<float>(t[0]);
    a.scalars[PS_VALUE] = static_cast<float>(t[1]);
    a.scalars[PS_ENTROPY] = static_cast<float>(t[2]);
    a.scalars[PS_LOSS] = static_cast<float>(t[0] + a.c.beta * t[3] + a.c.vf * t[1] - a.c.ent * t[2]);
    a.scalars[PS_APPROX_KL] = static_cast<float>(t[4] / tk);
    a.scalars[PS_OLD_APPROX_KL] = static_cast<float>(t[5] / tk);
    a.scalars[PS_CLIPFRAC] = static_cast<float>(t[6] / tk);
    a.scalars[PS_CLIP_ACTIVE] = static_cast<float>(t[7] / tk);
    a.scalars[PS_KL_REF] = static_cast<float>(t[8] / tk);
    a.scalars[PS_TOKENS] = static_cast<float>(tokens);
    a.counters[1] = 0u;
  }
}

// VEC: groups of 4 tokens with 16-byte loads (M % 4 == 0, aligned arrays); else one token per group.
// U groups per thread and batch (loads of the batch first); PREP: run the preparatory pass and the grid
// barrier first (cooperative launch only).
template <bool VEC, bool PREP, int U>
__global__ void __launch_bounds__(kThreads, U == 2 ? 3 : 2) ppo_main_kernel(const PpoArgs a) {
  constexpr int W = VEC ? 4 : 1;
  if constexpr (PREP) ppo_prep_pass<true>(a, a.seg);
  // Totals of this launch's preparatory pass, or of the preparatory launch before it: read past L1.
  const bool globals = PREP || a.has_prep;
  const int64_t m = a.b * a.l, groups = m / W;
  // Written by this launch's preparatory pass (other blocks): read past L1.
  const double tokens = globals ? __ldcg(a.globals) : a.host_tokens;
  const float mean = globals ? static_cast<float>(__ldcg(a.globals + 1)) : 0.0f;
  const float inv = globals ? static_cast<float>(__ldcg(a.globals + 2)) : 1.0f;
  const float w_token = static_cast<float>(1.0 / fmax(tokens, 1.0));
  // Batches of two groups are only launched for GRPO-shaped calls (see launch_u): no values, no entropies, one
  // advantage per row; their registers are not reserved.
  constexpr bool kGrpo = U == 2;
  const bool has_v = !kGrpo && a.values != nullptr, has_ref = a.ref != nullptr, has_h = !kGrpo && a.entropy != nullptr;
  const bool adv_tok = !kGrpo && a.adv_per_token;
  const bool need_row = !adv_tok || a.agg == AGG_SEQUENCE;
  const bool small = m <= 0xffffffffLL;
  const float inv_b = 1.0f / static_cast<float>(a.b);
  double s[kMainAcc];
#pragma unroll
  for (int k = 0; k < kMainAcc; ++k) s[k] = 0.0;
  const int64_t gstride = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t q0 = blockIdx.x * (int64_t)kThreads + threadIdx.x; q0 < groups; q0 += U * gstride) {
    float lp[U][4], lo[U][4], av[U][4], vv[U][4], vo[U][4], rr[U][4], hh[U][4], rf[U][4];
    uint32_t mbits[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t q = q0 + u * gstride;
      const int64_t i0 = q * W;
      mbits[u] = 0u;
      if (q >= groups) continue;
      if (VEC) {
        load4(a.logp, i0, true, lp[u]);
        load4(a.logp_old, i0, true, lo[u]);
        if (adv_tok) load4(a.adv, i0, true, av[u]);
        if (has_v) { load4(a.values, i0, true, vv[u]); load4(a.values_old, i0, true, vo[u]); load4(a.returns, i0, true, rr[u]); }
        if (has_h) load4(a.entropy, i0, true, hh[u]);
        if (has_ref) load4(a.ref, i0, true, rf[u]);
        mbits[u] = 0xfu;
        if (a.mask) {
          const uint32_t mw = __ldg(reinterpret_cast<const uint32_t*>(a.mask + i0));
          mbits[u] = 0;
#pragma unroll
          for (int k = 0; k < 4; ++k) mbits[u] |= static_cast<uint32_t>(((mw >> (8 * k)) & 0xffu) != 0) << k;
        }
      } else {
        lp[u][0] = __ldg(a.logp + i0);
        lo[u][0] = __ldg(a.logp_old + i0);
        if (adv_tok) av[u][0] = __ldg(a.adv + i0);
        if (has_v) { vv[u][0] = __ldg(a.values + i0); vo[u][0] = __ldg(a.values_old + i0); rr[u][0] = __ldg(a.returns + i0); }
        if (has_h) hh[u][0] = __ldg(a.entropy + i0);
        if (has_ref) rf[u][0] = __ldg(a.ref + i0);
        mbits[u] = a.mask ? (__ldg(a.mask + i0) != 0) : 1u;
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t q = q0 + u * gstride;
      if (q >= groups) break;
      const int64_t i0 = q * W;
      float gl[4], gv[4], gh[4];
      // Float sums of this group's (at most 4) tokens, added to the double totals once per group.
      float f[kMainAcc];
#pragma unroll
      for (int k = 0; k < kMainAcc; ++k) f[k] = 0.0f;
      int64_t row = 0, col = 0;
      if (need_row) {
        row = row_of(i0, a.l, small);
        col = i0 - row * a.l;
      }
#pragma unroll
      for (int k = 0; k < W; ++k) {
        if (need_row && k > 0 && ++col == a.l) { col = 0; ++row; }
        gl[k] = 0.0f;
        gv[k] = 0.0f;
        gh[k] = 0.0f;
        if (!((mbits[u] >> k) & 1u)) continue;
        const float w = a.agg == AGG_TOKEN ? w_token
                      : a.agg == AGG_SEQUENCE
                          ? inv_b / fmaxf(globals ? __ldcg(a.rowcnt + row) : static_cast<float>(a.l), 1.0f)
                          : 1.0f / a.agg_const;
        float A = adv_tok ? av[u][k] : __ldg(a.adv + row);
        if (a.norm_adv) A = (A - mean) * inv;
        const PpoToken t = ppo_token(lp[u][k], lo[u][k], A, has_ref, has_ref ? rf[u][k] : 0.0f, has_v,
                                     has_v ? vv[u][k] : 0.0f, has_v ? vo[u][k] : 0.0f, has_v ? rr[u][k] : 0.0f, a.c);
        gl[k] = w * (t.dpg + a.c.beta * t.dkl);
        gv[k] = w * a.c.vf * t.dv;
        gh[k] = -w * a.c.ent;
        const float h = has_h ? hh[u][k] : 0.0f;
        add_token_sums(f, t, w, h);
      }
#pragma unroll
      for (int k = 0; k < kMainAcc; ++k) s[k] += f[k];
      if (VEC) {
        store4(a.dlogp, i0, true, gl);
        if (has_v) store4(a.dvalue, i0, true, gv);
        if (!kGrpo && a.dentropy) store4(a.dentropy, i0, true, gh);
      } else {
        a.dlogp[i0] = gl[0];
        if (has_v) a.dvalue[i0] = gv[0];
        if (!kGrpo && a.dentropy) a.dentropy[i0] = gh[0];
      }
    }
  }
  main_totals(a, s, tokens);
}

// GRPO schedule "stash" (token-mean or constant aggregation, a mask, 16-byte vectors; see launch_u).
// The weights w = 1 / sum(mask) need the whole mask before the first gradient is written, hence the grid barrier.
// The old schedule reads the mask twice (a count by rows, then again with the tokens: 1 B/token more than the
// 17 B/token that must move, mostly from DRAM since the other 16 B/token pass through L2 in between). Here each
// thread counts the very groups it will process after the barrier, in the same order (group q0 + j * stride for
// j = 0, 1, ...), and keeps one bit per token in shared memory: word j / 8, nibble j % 8, word-major over the
// block's threads (conflict-free). The main pass then reads logp, logp_old, ref and writes dlogp only:
//   count:  T = sum_i [mask_i != 0]                        (16 loads of 4 mask bytes in flight per thread)
//   main:   dlogp_i = mask_i w (dpg_i + beta dkl_i),  w = 1 / max(T, 1) (token) or 1 / C (constant)
// Before the barrier each thread asks L2 for its first batch, so that the wait is not dead time for DRAM.
constexpr int kStashWords = 40;  // per thread: 320 groups of 4 tokens; 40 KiB of shared memory per block

// Bit k of the result: byte k of w is not zero.
__device__ __forceinline__ uint32_t nonzero_nibble(uint32_t w) {
  const uint32_t h = ((((w & 0x7f7f7f7fu) + 0x7f7f7f7fu) | w) & 0x80808080u) >> 7;  // bits 0, 8, 16, 24
  return (h | h >> 7 | h >> 14 | h >> 21) & 0xfu;
}

__device__ __forceinline__ void prefetch_l2(const void* p) {
#ifndef SA2VA_CUDA_EMULATION
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
#else
  (void)p;
#endif
}

__global__ void __launch_bounds__(kThreads, 3) ppo_grpo_stash_kernel(const PpoArgs a) {
#ifdef SA2VA_CUDA_EMULATION
  // per block: the emulated blocks of a cooperative launch take turns across the barrier
  uint32_t* const stash = static_cast<uint32_t*>(::emu::block_local(sizeof(uint32_t) * kStashWords * kThreads));
#else
  __shared__ uint32_t stash[kStashWords * kThreads];
#endif
  const int64_t m = a.b * a.l, groups = m / 4;
  const int64_t gstride = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const uint32_t* const mask4 = reinterpret_cast<const uint32_t*>(a.mask);
  unsigned cnt = 0;
  for (int64_t j0 = 0; first + j0 * gstride < groups; j0 += 16) {
    uint32_t mw[16];
#pragma unroll
    for (int k = 0; k < 16; ++k) {
      const int64_t q = first + (j0 + k) * gstride;
      mw[k] = q < groups ? __ldg(mask4 + q) : 0u;
    }
    uint32_t w0 = 0, w1 = 0;
#pragma unroll
    for (int k = 0; k < 16; ++k) {
      const uint32_t nib = nonzero_nibble(mw[k]);
      cnt += __popc(nib);
      if (k < 8) w0 |= nib << (4 * k);
      else w1 |= nib << (4 * (k - 8));
    }
    stash[(j0 / 8) * kThreads + threadIdx.x] = w0;
    stash[(j0 / 8 + 1) * kThreads + threadIdx.x] = w1;
  }
  double sa = 0.0, saa = 0.0, na = 0.0;
  if (a.norm_adv) {
    for (int64_t r = first; r < a.b; r += gstride) {
      const double x = a.adv[r];
      sa += x;
      saa += x * x;
      na += 1.0;
    }
  }
  const bool has_ref = a.ref != nullptr;
#pragma unroll
  for (int u = 0; u < 2; ++u) {
    const int64_t q = first + u * gstride;
    if (q < groups) {
      prefetch_l2(a.logp + 4 * q);
      prefetch_l2(a.logp_old + 4 * q);
      if (has_ref) prefetch_l2(a.ref + 4 * q);
    }
  }
  prep_totals<true>(a, cnt, sa, saa, na);  // the grid barrier; the stash is complete after its __syncthreads

  const double tokens = __ldcg(a.globals);
  const float mean = static_cast<float>(__ldcg(a.globals + 1));
  const float inv = static_cast<float>(__ldcg(a.globals + 2));
  const float w = a.agg == AGG_TOKEN ? static_cast<float>(1.0 / fmax(tokens, 1.0)) : 1.0f / a.agg_const;
  const bool small = m <= 0xffffffffLL;
  double s[kMainAcc];
#pragma unroll
  for (int k = 0; k < kMainAcc; ++k) s[k] = 0.0;
  // j: this thread's group ordinal, as in the count above; even, so both groups of a batch share a word
  int64_t j = 0;
  for (int64_t q0 = first; q0 < groups; q0 += 2 * gstride, j += 2) {
    float lp[2][4], lo[2][4], rf[2][4];
    const uint32_t word = stash[(j / 8) * kThreads + threadIdx.x];
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int64_t q = q0 + u * gstride;
      if (q >= groups) continue;
      load4(a.logp, 4 * q, true, lp[u]);
      load4(a.logp_old, 4 * q, true, lo[u]);
      if (has_ref) load4(a.ref, 4 * q, true, rf[u]);
    }
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int64_t q = q0 + u * gstride;
      if (q >= groups) break;
      const uint32_t bits = word >> (4 * ((j + u) % 8));
      const int64_t i0 = 4 * q;
      int64_t row = row_of(i0, a.l, small), col = i0 - row * a.l;
      float gl[4], f[kMainAcc];
#pragma unroll
      for (int k = 0; k < kMainAcc; ++k) f[k] = 0.0f;
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        if (k > 0 && ++col == a.l) { col = 0; ++row; }
        gl[k] = 0.0f;
        if (!((bits >> k) & 1u)) continue;
        float A = __ldg(a.adv + row);
        if (a.norm_adv) A = (A - mean) * inv;
        const PpoToken t = ppo_token(lp[u][k], lo[u][k], A, has_ref, has_ref ? rf[u][k] : 0.0f, false, 0.0f, 0.0f,
                                     0.0f, a.c);
        gl[k] = w * (t.dpg + a.c.beta * t.dkl);
        add_policy_sums(f, t, w);
      }
      // value and entropy terms (1, 2, 9) stay zero: GRPO-shaped calls have neither
      s[0] += f[0];
#pragma unroll
      for (int k = 3; k <= 8; ++k) s[k] += f[k];
      store4(a.dlogp, i0, true, gl);
    }
  }
  main_totals(a, s, tokens);
}

size_t align256(size_t v) { return (v + 255) / 256 * 256; }
bool al16(const void* p) { return p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Resident blocks per SM of one instantiation (asked once): one full wave, no tail wave; with PREP also the
// most a cooperative launch may have.
template <bool VEC, bool PREP, int U>
int main_resident() {
  static int cached = [] {
    int b = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, ppo_main_kernel<VEC, PREP, U>, kThreads, 0) != cudaSuccess) {
      cudaGetLastError();
      b = 0;
    }
    return b > 0 ? b : 1;
  }();
  return cached;
}

// PREP: fused (cooperative) preparatory pass; separate_prep: a preparatory launch first (then PREP is false).
template <bool VEC, bool PREP, int U>
void launch_main(PpoArgs& a, int64_t work, int sms, bool separate_prep, cudaStream_t stream) {
  const int64_t resident = main_resident<VEC, PREP, U>();
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>((work + kThreads - 1) / kThreads, sms * resident));
  const int64_t prep_blocks =
      separate_prep ? std::max<int64_t>(1, std::min<int64_t>((a.b + kThreads / a.seg - 1) / (kThreads / a.seg), sms * 4))
                    : blocks;
  const size_t off_globals = align256(prep_blocks * kPrepAcc * sizeof(double));
  const size_t off_rowcnt = off_globals + 256;
  const size_t off_main = off_rowcnt + align256(a.b * sizeof(float));
  const size_t bytes = off_main + blocks * kMainAcc * sizeof(double);
  // counters: [0] arrivals after the preparatory pass, [1] arrivals at the end, [2] release flag, [3] departures
  StreamWorkspace ws = stream_workspace(stream, 4, bytes);
  char* base = static_cast<char*>(ws.scratch);
  a.counters = ws.counters;
  a.prep_partials = reinterpret_cast<double*>(base);
  a.globals = reinterpret_cast<double*>(base + off_globals);
  a.rowcnt = reinterpret_cast<float*>(base + off_rowcnt);
  a.main_partials = reinterpret_cast<double*>(base + off_main);
  if (separate_prep) {
    SA2VA_LAUNCH(static_cast<unsigned>(prep_blocks), kThreads, stream, ppo_prep_kernel)(a);
    SA2VA_CUDA_CHECK_LAUNCH("ppo_prep_kernel");
  }
  if (PREP) {
    void* args[] = {&a};
    SA2VA_CUDA_CHECK(cudaLaunchCooperativeKernel(ppo_main_kernel<VEC, PREP, U>,
                                                 dim3(static_cast<unsigned>(blocks)), dim3(kThreads), args, 0, stream));
  } else {
    SA2VA_LAUNCH(static_cast<unsigned>(blocks), kThreads, stream, ppo_main_kernel<VEC, PREP, U>)(a);
  }
  SA2VA_CUDA_CHECK_LAUNCH("ppo_main_kernel");
}

// The stash schedule if it applies (see ppo_grpo_stash_kernel): false when the bits of a thread's groups would
// not fit in its kStashWords words of shared memory (over ~130M tokens on 132 SMs).
bool launch_stash(PpoArgs& a, int64_t work, int sms, cudaStream_t stream) {
  static const int resident = [] {
    int b = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, ppo_grpo_stash_kernel, kThreads, 0) != cudaSuccess) {
      cudaGetLastError();
      b = 0;
    }
    return b > 0 ? b : 1;
  }();
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>((work + kThreads - 1) / kThreads, int64_t{sms} * resident));
  const int64_t groups = a.b * a.l / 4, per_thread = (groups + blocks * kThreads - 1) / (blocks * kThreads);
  if ((per_thread + 15) / 16 * 2 > kStashWords) return false;
  const size_t off_globals = align256(blocks * kPrepAcc * sizeof(double));
  const size_t off_main = off_globals + 256;
  // counters: [0] arrivals at the barrier, [1] arrivals at the end, [2] release flag, [3] departures
  StreamWorkspace ws = stream_workspace(stream, 4, off_main + blocks * kMainAcc * sizeof(double));
  char* base = static_cast<char*>(ws.scratch);
  a.counters = ws.counters;
  a.prep_partials = reinterpret_cast<double*>(base);
  a.globals = reinterpret_cast<double*>(base + off_globals);
  a.rowcnt = nullptr;
  a.main_partials = reinterpret_cast<double*>(base + off_main);
  void* args[] = {&a};
  SA2VA_CUDA_CHECK(cudaLaunchCooperativeKernel(ppo_grpo_stash_kernel, dim3(static_cast<unsigned>(blocks)),
                                               dim3(kThreads), args, 0, stream));
  SA2VA_CUDA_CHECK_LAUNCH("ppo_grpo_stash_kernel");
  return true;
}

// GRPO schedule (ppo_set_grpo_schedule, else SA2VA_PPO_GRPO=old|stash, read once; default stash).
std::atomic<int> g_grpo_schedule{PPO_GRPO_DEFAULT};
int grpo_schedule() {
  const int set = g_grpo_schedule.load();
  if (set != PPO_GRPO_DEFAULT) return set;
  static const int env = [] {
    const char* v = std::getenv("SA2VA_PPO_GRPO");
    return v != nullptr && std::strcmp(v, "old") == 0 ? PPO_GRPO_OLD : PPO_GRPO_STASH;
  }();
  return env;
}

template <bool VEC>
void launch_u(PpoArgs& a, int64_t work, int sms, cudaStream_t stream) {
  // Two groups per batch when few arrays stream (GRPO: logp, logp_old, ref, mask; one advantage per row): a
  // batch of one leaves too few bytes in flight per SM for these 13-17 B per token. CleanRL's eight arrays fill
  // the registers with one.
  // GRPO-shaped calls fuse their preparatory pass (a mask count: 1 B/token, mostly read again from L2) into one
  // cooperative launch. CleanRL-shaped ones keep it as a launch of its own: normalising per-token advantages
  // reads 4 B/token at the main kernel's low occupancy otherwise, which costs more than the second launch.
  if (a.values == nullptr && a.entropy == nullptr && a.dentropy == nullptr && !a.adv_per_token) {
    // Per-row counts (sequence mean) keep the old schedule: its preparatory pass goes by rows.
    if constexpr (VEC) {
      if (a.mask != nullptr && a.agg != AGG_SEQUENCE && grpo_schedule() == PPO_GRPO_STASH &&
          launch_stash(a, (work + 1) / 2, sms, stream))
        return;
    }
    if (a.has_prep) launch_main<VEC, true, 2>(a, (work + 1) / 2, sms, false, stream);
    else launch_main<VEC, false, 2>(a, (work + 1) / 2, sms, false, stream);
  } else {
    launch_main<VEC, false, 1>(a, work, sms, a.has_prep != 0, stream);
  }
}

}  // namespace

void ppo_set_grpo_schedule(int schedule) {
  g_grpo_schedule.store(schedule == PPO_GRPO_OLD || schedule == PPO_GRPO_STASH ? schedule : PPO_GRPO_DEFAULT);
}

void ppo_loss_cuda(const float* logp, const float* logp_old, const float* adv, int adv_per_token, const uint8_t* mask,
                   int64_t b, int64_t l, const float* values, const float* values_old, const float* returns,
                   const float* entropy, const float* ref_logp, const float* params, float* scalars, float* dlogp,
                   float* dvalue, float* dentropy, cudaStream_t stream) {
  check_ppo_args("ppo_loss_cuda", logp, logp_old, adv, b, l, values, values_old, returns, params, scalars, dlogp,
                 dvalue);
  const int64_t m = b * l;
  PpoArgs a{};
  a.logp = logp;
  a.logp_old = logp_old;
  a.adv = adv;
  a.adv_per_token = adv_per_token;
  a.mask = mask;
  a.b = b;
  a.l = l;
  a.values = values;
  a.values_old = values_old;
  a.returns = returns;
  a.entropy = entropy;
  a.ref = ref_logp;
  a.c = PpoConsts{1.0f - params[PP_EPS_LOW], 1.0f + params[PP_EPS_HIGH], params[PP_EPS_VALUE], params[PP_VF_COEF],
                  params[PP_ENT_COEF], params[PP_KL_COEF]};
  a.agg = static_cast<int>(params[PP_AGG]);
  a.agg_const = params[PP_AGG_CONST];
  a.norm_adv = params[PP_NORM_ADV] != 0.0f;
  a.adv_eps = params[PP_ADV_EPS];
  a.has_prep = mask != nullptr || a.norm_adv;
  a.host_tokens = static_cast<double>(m);
  a.scalars = scalars;
  a.dlogp = dlogp;
  a.dvalue = dvalue;
  a.dentropy = dentropy;

  const int sms = device_sm_count();
  const bool vec = m % 4 == 0 && al16(logp) && al16(logp_old) && (!adv_per_token || al16(adv)) && al16(values) &&
                   al16(values_old) && al16(returns) && al16(entropy) && al16(ref_logp) && al16(dlogp) &&
                   al16(dvalue) && al16(dentropy) &&
                   (mask == nullptr || reinterpret_cast<uintptr_t>(mask) % 4 == 0);
  const int64_t work = vec ? m / 4 : m;
  int seg = 1;
  while (seg < 32 && seg < l) seg <<= 1;
  a.seg = seg;
  a.prep_vec = mask != nullptr && !(adv_per_token && a.norm_adv) && l % 16 == 0 &&
               reinterpret_cast<uintptr_t>(mask) % 16 == 0;
  if (vec) launch_u<true>(a, work, sms, stream);
  else launch_u<false>(a, work, sms, stream);
}

}  // namespace sa2va

#else  // built without nvcc

namespace sa2va {
void ppo_set_grpo_schedule(int) {}
void ppo_loss_cuda(const float*, const float*, const float*, int, const uint8_t*, int64_t, int64_t, const float*,
                   const float*, const float*, const float*, const float*, const float*, float*, float*, float*, float*,
                   cudaStream_t) {
  fail_no_cuda("ppo_loss_cuda");
}
}  // namespace sa2va

#endif
