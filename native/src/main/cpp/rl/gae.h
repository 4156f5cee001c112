// Generalized Advantage Estimation (Schulman et al. 2016) on time-major rollouts [T, N] (N environments or
// sequences), with terminations, truncations (bootstrapped from the value of the final observation) and a
// bootstrap value after the last step:
//
//   next_t  = V[t+1] (t < T-1), bootstrap (t = T-1);  next_t = trunc_values[t] where truncated[t]
//   delta_t = r_t + gamma * (1 - terminated_t) * next_t - V_t
//   A_t     = delta_t + gamma * lambda * (1 - terminated_t) * (1 - truncated_t) * A_{t+1},   A_T = 0
//   returns = A + V   (from the advantages before any normalisation)
//
// terminated_t / truncated_t say that the episode ended after the action of step t. CleanRL's ppo.py keeps
// dones[t] = "observation t starts a new episode", so terminated_t here = dones[t+1] there and next_done for
// t = T-1; passing its done flags (termination or truncation) as `terminated` reproduces its loop exactly.
//
// Optional fused normalisation (norm_stats != null): norm_stats = {mean, std} over all T*N advantages (std
// with Bessel's correction, as torch.std), and the advantages are replaced by (A - mean) / (std + eps).
//
// CUDA: one launch. Shape picks the schedule (algo 0): up to 8M elements (and T <= 16 * 512) a register scan:
// every environment's T steps are cut into chunks of LC = 4, 8 or 16 steps, one thread per chunk loads it into
// registers, composes the affine maps A -> delta + c A of its steps, a suffix scan over the chunks (shared
// memory) gives every chunk its incoming A, and the thread writes A and the returns from its registers; with
// normalisation the launch is cooperative and the statistics meet at a grid barrier. Beyond that: one thread
// per environment walking back over T when N is large, otherwise a two-sweep chunked scan (plus one
// elementwise launch when normalising). Long rollouts of few environments (T >= 1024, N <= 16, T <= 8192) take
// a warp scan instead: one block per environment, lanes on consecutive steps (coalesced loads of narrow time
// rows), the chunks combined by warp shuffles and one shared-memory exchange between warps. algo 1 forces one
// thread per environment, algo 2 the two-sweep chunked scan, algo 3 the register scan, algo 4 the warp scan
// (where T fits, else the register scan); for tests and A/B timings. The CPU ignores algo.
#pragma once
#include "../common/sa2va_api.h"

namespace sa2va {

// rewards, values, trunc_values: float [T, N]; terminated, truncated: [T, N] of dtype U8 or F32 (non-zero =
// true; truncated may be null, then trunc_values is unused); bootstrap: float [N] or null (= 0);
// adv: float [T, N]; ret: float [T, N] or null; norm_stats: float [2] or null.
void gae_cpu(const float* rewards, const float* values, const void* terminated, int term_dtype, const void* truncated,
             int trunc_dtype, const float* trunc_values, const float* bootstrap, int64_t t, int64_t n, float gamma,
             float lambda, float eps, float* adv, float* ret, float* norm_stats);
void gae_cuda(const float* rewards, const float* values, const void* terminated, int term_dtype, const void* truncated,
              int trunc_dtype, const float* trunc_values, const float* bootstrap, int64_t t, int64_t n, float gamma,
              float lambda, float eps, float* adv, float* ret, float* norm_stats, int algo, cudaStream_t stream);

// The chunk count per environment the CUDA launcher would use (1 = one thread per environment), for tests
// and benchmarks; needs a current CUDA device for algo 0.
int gae_cuda_chunks(int64_t t, int64_t n, int algo);

}  // namespace sa2va
