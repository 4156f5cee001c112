// CPU implementation of the fused PPO loss (see ppo_loss.h): sums in double, rows in parallel.
#include "ppo_loss.h"
#include <algorithm>
#include <cmath>
#include <vector>
#include "ppo_math.h"
#include "rl_checks.h"
#include "../common/errors.h"
#include "../common/parallel.h"

namespace sa2va {

void check_ppo_args(const char* fn, const float* logp, const float* logp_old, const float* adv, int64_t b, int64_t l,
                    const float* values, const float* values_old, const float* returns, const float* params,
                    const float* scalars, const float* dlogp, const float* dvalue) {
  SA2VA_CHECK_ARG(logp && logp_old && adv && params && scalars && dlogp, fn,
                  ": null logp, logp_old, advantages, params, scalars or dlogp");
  SA2VA_CHECK_ARG(b >= 1 && l >= 1, fn, ": need B >= 1 and L >= 1, got B=", b, " L=", l);
  const bool v = values != nullptr;
  SA2VA_CHECK_ARG(v == (values_old != nullptr) && v == (returns != nullptr), fn,
                  ": values, values_old and returns go together");
  SA2VA_CHECK_ARG(!v || dvalue != nullptr, fn, ": values need a dvalue output");
  for (int k = 0; k < PP_LEN; ++k) SA2VA_CHECK_ARG(std::isfinite(params[k]), fn, ": parameter ", k, " is not finite");
  SA2VA_CHECK_ARG(params[PP_EPS_LOW] >= 0.0f && params[PP_EPS_LOW] < 1.0f, fn, ": eps_low must be in [0, 1), got ",
                  params[PP_EPS_LOW]);
  SA2VA_CHECK_ARG(params[PP_EPS_HIGH] >= 0.0f, fn, ": eps_high must be >= 0, got ", params[PP_EPS_HIGH]);
  SA2VA_CHECK_ARG(params[PP_ADV_EPS] >= 0.0f, fn, ": adv_eps must be >= 0");
  const int agg = static_cast<int>(params[PP_AGG]);
  SA2VA_CHECK_ARG(agg >= AGG_TOKEN && agg <= AGG_CONSTANT, fn, ": unknown aggregation ", agg);
  SA2VA_CHECK_ARG(agg != AGG_CONSTANT || params[PP_AGG_CONST] > 0.0f, fn, ": constant aggregation needs C > 0");
}

void ppo_loss_cpu(const float* logp, const float* logp_old, const float* adv, int adv_per_token, const uint8_t* mask,
                  int64_t b, int64_t l, const float* values, const float* values_old, const float* returns,
                  const float* entropy, const float* ref_logp, const float* params, float* scalars, float* dlogp,
                  float* dvalue, float* dentropy) {
  check_ppo_args("ppo_loss_cpu", logp, logp_old, adv, b, l, values, values_old, returns, params, scalars, dlogp,
                 dvalue);
  auto active = [&](int64_t i) { return mask == nullptr || mask[i] != 0; };
  // Token counts per row and the advantage normalisation (the "phase A" of the CUDA version).
  std::vector<double> rowcnt(b, 0.0);
  double tokens = 0.0, sa = 0.0, saa = 0.0, na = 0.0;
  for (int64_t r = 0; r < b; ++r) {
    for (int64_t j = 0; j < l; ++j) {
      const int64_t i = r * l + j;
      if (!active(i)) continue;
      rowcnt[r] += 1.0;
      if (adv_per_token) { sa += adv[i]; saa += static_cast<double>(adv[i]) * adv[i]; na += 1.0; }
    }
    tokens += rowcnt[r];
    if (!adv_per_token) { sa += adv[r]; saa += static_cast<double>(adv[r]) * adv[r]; na += 1.0; }
  }
  float mean = 0.0f, inv = 1.0f;
  if (params[PP_NORM_ADV] != 0.0f) {
    const double mu = na > 0 ? sa / na : 0.0;
    const double var = na > 1 ? (saa - na * mu * mu) / (na - 1.0) : NAN;
    mean = static_cast<float>(mu);
    inv = static_cast<float>(1.0 / (std::sqrt(var > 0.0 ? var : 0.0) + params[PP_ADV_EPS]));
    if (!(na > 1)) inv = NAN;  // torch.std of one element is NaN
  }
  const int agg = static_cast<int>(params[PP_AGG]);
  const PpoConsts c{1.0f - params[PP_EPS_LOW], 1.0f + params[PP_EPS_HIGH], params[PP_EPS_VALUE], params[PP_VF_COEF],
                    params[PP_ENT_COEF], params[PP_KL_COEF]};
  const bool has_v = values != nullptr, has_ref = ref_logp != nullptr;
  // 0 w*pg, 1 w*v, 2 w*H, 3 w*kl, 4 approx_kl, 5 old_kl, 6 clipped, 7 clip_active, 8 kl, 9 H (token sums)
  std::vector<std::vector<double>> part(b, std::vector<double>(10, 0.0));
  parallel_for(b, 16, [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const double w = agg == AGG_TOKEN ? 1.0 / std::max(tokens, 1.0)
                     : agg == AGG_SEQUENCE ? 1.0 / (static_cast<double>(b) * std::max(rowcnt[r], 1.0))
                                           : 1.0 / params[PP_AGG_CONST];
      const float wf = static_cast<float>(w);
      std::vector<double>& s = part[r];
      for (int64_t j = 0; j < l; ++j) {
        const int64_t i = r * l + j;
        if (!active(i)) {
          dlogp[i] = 0.0f;
          if (has_v) dvalue[i] = 0.0f;
          if (dentropy) dentropy[i] = 0.0f;
          continue;
        }
        float A = adv_per_token ? adv[i] : adv[r];
        if (params[PP_NORM_ADV] != 0.0f) A = (A - mean) * inv;
        PpoToken t = ppo_token(logp[i], logp_old[i], A, has_ref, has_ref ? ref_logp[i] : 0.0f, has_v,
                               has_v ? values[i] : 0.0f, has_v ? values_old[i] : 0.0f, has_v ? returns[i] : 0.0f, c);
        dlogp[i] = wf * (t.dpg + c.beta * t.dkl);
        if (has_v) dvalue[i] = wf * c.vf * t.dv;
        if (dentropy) dentropy[i] = -wf * c.ent;
        const double h = entropy ? entropy[i] : 0.0;
        add_token_sums(s.data(), t, w, h);
      }
    }
  });
  double tot[10] = {0};
  for (int64_t r = 0; r < b; ++r)
    for (int k = 0; k < 10; ++k) tot[k] += part[r][k];
  const double tk = std::max(tokens, 1.0);
  scalars[PS_PG] = static_cast<float>(tot[0]);
  scalars[PS_VALUE] = static_cast<float>(tot[1]);
  scalars[PS_ENTROPY] = static_cast<float>(tot[2]);
  scalars[PS_LOSS] = static_cast<float>(tot[0] + c.beta * tot[3] + c.vf * tot[1] - c.ent * tot[2]);
  scalars[PS_APPROX_KL] = static_cast<float>(tot[4] / tk);
  scalars[PS_OLD_APPROX_KL] = static_cast<float>(tot[5] / tk);
  scalars[PS_CLIPFRAC] = static_cast<float>(tot[6] / tk);
  scalars[PS_CLIP_ACTIVE] = static_cast<float>(tot[7] / tk);
  scalars[PS_KL_REF] = static_cast<float>(tot[8] / tk);
  scalars[PS_TOKENS] = static_cast<float>(tokens);
}

}  // namespace sa2va
