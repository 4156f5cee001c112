// Fused PPO / GRPO loss: one pass over the tokens gives the loss, its diagnostics and the gradients w.r.t. the
// new log-probabilities, the values and the entropies.
//
// Tokens are B rows x L columns (a row = a sequence, or one sample with L = 1). Per active token (mask != 0):
//   ratio = exp(logp - logp_old);  pg = max(-A ratio, -A clamp(ratio, 1 - eps_low, 1 + eps_high))
//   kl    = exp(ref - logp) - (ref - logp) - 1                       (k3, when ref_logp is given)
//   v     = 0.5 max((V - R)^2, (V_old + clamp(V - V_old, -eps_v, eps_v) - R)^2)   (eps_v > 0; else 0.5 (V - R)^2)
//   loss  = sum_i w_i (pg_i + beta kl_i) + vf_coef sum_i w_i v_i - ent_coef sum_i w_i H_i
// with the aggregation weights w_i = mask_i / sum(mask) ("token": CleanRL's mean, TRL's bnpo/dapo),
// mask_i / (B max(1, sum_row mask)) ("sequence": TRL's grpo) or mask_i / C ("constant": TRL's dr_grpo with
// C = B * max_completion_length). This is CleanRL ppo.py (eps_low = eps_high = clip_coef, eps_v = clip_coef
// with clip_vloss, beta = 0) and TRL GRPOTrainer's loss (eps_low = epsilon, eps_high = epsilon_high, beta,
// loss_type); see PpoLoss.java for the defaults of each. Gradients follow torch's rules for max/min (a tie
// splits the gradient in halves) and clamp (derivative 1 on the closed interval).
//
// Advantages are per token [B, L] or per row [B] (GRPO: one advantage per completion). With norm_adv they
// are first normalised, (A - mean) / (std + adv_eps) with Bessel's std over the active tokens (per token) or
// over the rows (per row), as CleanRL's per-minibatch normalisation (adv_eps = 1e-8).
//
// Diagnostics (masked token means): approx_kl = mean((ratio - 1) - log ratio) (k3, CleanRL), old_approx_kl =
// mean(-log ratio), clipfrac = mean(ratio outside [1 - eps_low, 1 + eps_high]) (CleanRL), clip_active =
// mean((ratio < 1 - eps_low and A < 0) or (ratio > 1 + eps_high and A > 0)) (TRL's clip_ratio), kl_ref.
#pragma once
#include "../common/sa2va_api.h"

namespace sa2va {

enum PpoParam : int {
  PP_EPS_LOW = 0, PP_EPS_HIGH, PP_EPS_VALUE, PP_VF_COEF, PP_ENT_COEF, PP_KL_COEF, PP_NORM_ADV, PP_ADV_EPS,
  PP_AGG, PP_AGG_CONST, PP_LEN
};
enum PpoAgg : int { AGG_TOKEN = 0, AGG_SEQUENCE = 1, AGG_CONSTANT = 2 };
enum PpoScalar : int {
  PS_LOSS = 0, PS_PG, PS_VALUE, PS_ENTROPY, PS_APPROX_KL, PS_OLD_APPROX_KL, PS_CLIPFRAC, PS_CLIP_ACTIVE, PS_KL_REF,
  PS_TOKENS, PS_LEN
};

// All float32, row-major [B, L] unless noted; null = absent. mask: uint8 [B, L]. adv: [B, L] (adv_per_token)
// or [B]. values, values_old, returns: all three or none. scalars: float [PS_LEN]. dlogp: [B, L];
// dvalue: [B, L] (needed with values); dentropy: [B, L] or null.
void ppo_loss_cpu(const float* logp, const float* logp_old, const float* adv, int adv_per_token, const uint8_t* mask,
                  int64_t b, int64_t l, const float* values, const float* values_old, const float* returns,
                  const float* entropy, const float* ref_logp, const float* params, float* scalars, float* dlogp,
                  float* dvalue, float* dentropy);
// Schedule of the CUDA kernel for GRPO-shaped calls (no values or entropies, one advantage per row) with a mask and
// token-mean or constant aggregation, for A/B measurements: PPO_GRPO_STASH (the default) reads the mask once and
// keeps it as bits in shared memory across the grid barrier; PPO_GRPO_OLD counts the mask by rows and reads it
// again with the tokens. PPO_GRPO_DEFAULT: back to the environment's SA2VA_PPO_GRPO (old|stash), else stash.
// Results differ between the two only by the order in which the sums add up.
enum PpoGrpoSchedule : int { PPO_GRPO_DEFAULT = 0, PPO_GRPO_OLD = 1, PPO_GRPO_STASH = 2 };
void ppo_set_grpo_schedule(int schedule);
void ppo_loss_cuda(const float* logp, const float* logp_old, const float* adv, int adv_per_token, const uint8_t* mask,
                   int64_t b, int64_t l, const float* values, const float* values_old, const float* returns,
                   const float* entropy, const float* ref_logp, const float* params, float* scalars, float* dlogp,
                   float* dvalue, float* dentropy, cudaStream_t stream);

}  // namespace sa2va
