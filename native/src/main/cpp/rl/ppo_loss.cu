// CUDA implementation of the fused PPO loss (see ppo_loss.h).
//
// Main kernel: grid-stride over groups of 4 tokens (float4 loads when every array is aligned), per-token math
// of ppo_math.h, gradients written in the same pass, sums in double per thread, then per block, then the
// last block (workspace.h) combines the block partials in order and writes the scalars. One launch.
// A preparatory launch is added only when the weights or the advantage normalisation need data-dependent
// totals (a token mask, or norm_adv): token counts per row and the mean / std of the advantages, with the
// same last-block pattern; its results stay on the device for the main kernel (no host synchronisation).
#include "ppo_loss.h"
#include "rl_checks.h"
#include "../common/errors.h"

#ifndef SA2VA_NO_CUDA
#include <cuda_runtime.h>
#include <algorithm>
#include <climits>
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

// Rows are handled by segments of S lanes (S = power of two <= 32 covering L when L is short), so short rows
// do not leave most of a warp idle.
__global__ void __launch_bounds__(kThreads) ppo_prep_kernel(const PpoArgs a, int seg) {
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
    if (live) {
      for (int64_t j = sl; j < a.l; j += seg) {
        const int64_t i = row * a.l + j;
        const bool m = a.mask == nullptr || a.mask[i] != 0;
        cnt += m;
        if (m && a.adv_per_token) {
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
  DSums<kPrepAcc> acc{{tok, sa, saa, na}};
  acc = block_sum<kPrepAcc, kThreads>(acc);
  if (threadIdx.x == 0) {
    double* dst = a.prep_partials + blockIdx.x * kPrepAcc;
    for (int k = 0; k < kPrepAcc; ++k) dst[k] = acc.v[k];
  }
  if (!last_block_arrive(a.counters + 0, gridDim.x)) return;
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
    a.counters[0] = 0u;
  }
}

__device__ __forceinline__ void load4(const float* p, int64_t i, bool vec, float* v) {
  if (vec) {
    float4 q = *reinterpret_cast<const float4*>(p + i);
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

// VEC: groups of 4 tokens with 16-byte loads (M % 4 == 0, aligned arrays); else one token per iteration.
template <bool VEC>
__global__ void __launch_bounds__(kThreads) ppo_main_kernel(const PpoArgs a) {
  constexpr int W = VEC ? 4 : 1;
  const int64_t m = a.b * a.l, groups = m / W;
  const double tokens = a.has_prep ? a.globals[0] : a.host_tokens;
  const float mean = a.has_prep ? static_cast<float>(a.globals[1]) : 0.0f;
  const float inv = a.has_prep ? static_cast<float>(a.globals[2]) : 1.0f;
  const float w_token = static_cast<float>(1.0 / fmax(tokens, 1.0));
  const bool has_v = a.values != nullptr, has_ref = a.ref != nullptr, has_h = a.entropy != nullptr;
  double s[kMainAcc];
#pragma unroll
  for (int k = 0; k < kMainAcc; ++k) s[k] = 0.0;
  for (int64_t q = blockIdx.x * (int64_t)kThreads + threadIdx.x; q < groups; q += (int64_t)gridDim.x * kThreads) {
    const int64_t i0 = q * W;
    float lp[4], lo[4], av[4], vv[4], vo[4], rr[4], hh[4], rf[4];
    uint32_t mbits = 0xfu;
    if (VEC) {
      load4(a.logp, i0, true, lp);
      load4(a.logp_old, i0, true, lo);
      if (a.adv_per_token) load4(a.adv, i0, true, av);
      if (has_v) { load4(a.values, i0, true, vv); load4(a.values_old, i0, true, vo); load4(a.returns, i0, true, rr); }
      if (has_h) load4(a.entropy, i0, true, hh);
      if (has_ref) load4(a.ref, i0, true, rf);
      if (a.mask) {
        const uint32_t mw = *reinterpret_cast<const uint32_t*>(a.mask + i0);
        mbits = 0;
#pragma unroll
        for (int k = 0; k < 4; ++k) mbits |= static_cast<uint32_t>(((mw >> (8 * k)) & 0xffu) != 0) << k;
      }
    } else {
      lp[0] = a.logp[i0];
      lo[0] = a.logp_old[i0];
      if (a.adv_per_token) av[0] = a.adv[i0];
      if (has_v) { vv[0] = a.values[i0]; vo[0] = a.values_old[i0]; rr[0] = a.returns[i0]; }
      if (has_h) hh[0] = a.entropy[i0];
      if (has_ref) rf[0] = a.ref[i0];
      if (a.mask) mbits = a.mask[i0] != 0;
    }
    float gl[4], gv[4], gh[4];
    int64_t row = i0 / a.l, col = i0 - row * a.l;
#pragma unroll
    for (int k = 0; k < W; ++k) {
      if (k > 0 && ++col == a.l) { col = 0; ++row; }
      gl[k] = 0.0f;
      gv[k] = 0.0f;
      gh[k] = 0.0f;
      if (!((mbits >> k) & 1u)) continue;
      const float w = a.agg == AGG_TOKEN ? w_token
                    : a.agg == AGG_SEQUENCE ? 1.0f / (static_cast<float>(a.b) *
                                                      fmaxf(a.has_prep ? a.rowcnt[row] : static_cast<float>(a.l), 1.0f))
                                            : 1.0f / a.agg_const;
      float A = a.adv_per_token ? av[k] : a.adv[row];
      if (a.norm_adv) A = (A - mean) * inv;
      const PpoToken t = ppo_token(lp[k], lo[k], A, has_ref, has_ref ? rf[k] : 0.0f, has_v, has_v ? vv[k] : 0.0f,
                                   has_v ? vo[k] : 0.0f, has_v ? rr[k] : 0.0f, a.c);
      gl[k] = w * (t.dpg + a.c.beta * t.dkl);
      gv[k] = w * a.c.vf * t.dv;
      gh[k] = -w * a.c.ent;
      const double h = has_h ? hh[k] : 0.0;
      s[0] += static_cast<double>(w) * t.pg;
      s[1] += static_cast<double>(w) * t.v;
      s[2] += w * h;
      s[3] += static_cast<double>(w) * t.kl;
      s[4] += t.approx_kl;
      s[5] += t.old_kl;
      s[6] += t.clipped;
      s[7] += t.clip_active;
      s[8] += t.kl;
      s[9] += h;
    }
    if (VEC) {
      store4(a.dlogp, i0, true, gl);
      if (has_v) store4(a.dvalue, i0, true, gv);
      if (a.dentropy) store4(a.dentropy, i0, true, gh);
    } else {
      a.dlogp[i0] = gl[0];
      if (has_v) a.dvalue[i0] = gv[0];
      if (a.dentropy) a.dentropy[i0] = gh[0];
    }
  }
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

// Resident blocks per SM of the main kernel (asked once): one full wave, no tail wave.
template <bool VEC>
int main_resident() {
  static int cached = [] {
    int b = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, ppo_main_kernel<VEC>, kThreads, 0) != cudaSuccess) {
      cudaGetLastError();
      b = 0;
    }
    return b > 0 ? b : 2;
  }();
  return cached;
}

size_t align256(size_t v) { return (v + 255) / 256 * 256; }
bool al16(const void* p) { return p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

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
  const int64_t resident = vec ? main_resident<true>() : main_resident<false>();
  const int64_t main_blocks = std::max<int64_t>(1, std::min<int64_t>((work + kThreads - 1) / kThreads, sms * resident));
  int seg = 1;
  while (seg < 32 && seg < l) seg <<= 1;
  const int64_t prep_blocks =
      std::max<int64_t>(1, std::min<int64_t>((b + kThreads / seg - 1) / (kThreads / seg), sms * 4));
  const size_t off_globals = align256(prep_blocks * kPrepAcc * sizeof(double));
  const size_t off_rowcnt = off_globals + 256;
  const size_t off_main = off_rowcnt + align256(b * sizeof(float));
  const size_t bytes = off_main + main_blocks * kMainAcc * sizeof(double);
  StreamWorkspace ws = stream_workspace(stream, 2, bytes);
  char* base = static_cast<char*>(ws.scratch);
  a.counters = ws.counters;
  a.prep_partials = reinterpret_cast<double*>(base);
  a.globals = reinterpret_cast<double*>(base + off_globals);
  a.rowcnt = reinterpret_cast<float*>(base + off_rowcnt);
  a.main_partials = reinterpret_cast<double*>(base + off_main);
  if (a.has_prep) {
    ppo_prep_kernel<<<static_cast<unsigned>(prep_blocks), kThreads, 0, stream>>>(a, seg);
    SA2VA_CUDA_CHECK_LAUNCH("ppo_prep_kernel");
  }
  if (vec) ppo_main_kernel<true><<<static_cast<unsigned>(main_blocks), kThreads, 0, stream>>>(a);
  else ppo_main_kernel<false><<<static_cast<unsigned>(main_blocks), kThreads, 0, stream>>>(a);
  SA2VA_CUDA_CHECK_LAUNCH("ppo_main_kernel");
}

}  // namespace sa2va

#else  // built without nvcc

namespace sa2va {
void ppo_loss_cuda(const float*, const float*, const float*, int, const uint8_t*, int64_t, int64_t, const float*,
                   const float*, const float*, const float*, const float*, const float*, float*, float*, float*, float*,
                   cudaStream_t) {
  fail_no_cuda("ppo_loss_cuda");
}
}  // namespace sa2va

#endif
