// CPU implementation of GAE (see gae.h): the reverse recurrence per environment, environments in parallel.
#include "gae.h"
#include <cmath>
#include <vector>
#include "gae_step.h"
#include "rl_checks.h"
#include "../common/errors.h"
#include "../common/parallel.h"

namespace sa2va {

void check_gae_args(const char* fn, const float* rewards, const float* values, const void* terminated, int term_dtype,
                    const void* truncated, int trunc_dtype, const float* trunc_values, int64_t t, int64_t n,
                    float gamma, float lambda, float eps, const float* adv, const float* norm_stats) {
  SA2VA_CHECK_ARG(rewards && values && terminated && adv, fn, ": null rewards, values, terminated or advantages");
  SA2VA_CHECK_ARG(t >= 1 && n >= 1, fn, ": need T >= 1 and N >= 1, got T=", t, " N=", n);
  SA2VA_CHECK_ARG(gamma >= 0.0f && gamma <= 1.0f, fn, ": gamma must be in [0, 1], got ", gamma);
  SA2VA_CHECK_ARG(lambda >= 0.0f && lambda <= 1.0f, fn, ": lambda must be in [0, 1], got ", lambda);
  SA2VA_CHECK_ARG(term_dtype == U8 || term_dtype == F32, fn, ": terminated must be uint8 or float32");
  if (truncated) {
    SA2VA_CHECK_ARG(trunc_dtype == U8 || trunc_dtype == F32, fn, ": truncated must be uint8 or float32");
    SA2VA_CHECK_ARG(trunc_values != nullptr, fn, ": truncated needs trunc_values (value of the final observation)");
  }
  if (norm_stats) {
    SA2VA_CHECK_ARG(t * n >= 2, fn, ": normalising needs at least 2 advantages (Bessel's correction)");
    SA2VA_CHECK_ARG(eps >= 0.0f && std::isfinite(eps), fn, ": eps must be finite and >= 0, got ", eps);
  }
}

void gae_cpu(const float* rewards, const float* values, const void* terminated, int term_dtype, const void* truncated,
             int trunc_dtype, const float* trunc_values, const float* bootstrap, int64_t t, int64_t n, float gamma,
             float lambda, float eps, float* adv, float* ret, float* norm_stats) {
  check_gae_args("gae_cpu", rewards, values, terminated, term_dtype, truncated, trunc_dtype, trunc_values, t, n, gamma,
                 lambda, eps, adv, norm_stats);
  parallel_for(n, 64, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      float a = 0.0f;
      float next = bootstrap ? bootstrap[j] : 0.0f;
      for (int64_t s = t - 1; s >= 0; --s) {
        const int64_t i = s * n + j;
        const bool trunc = flag_at(truncated, trunc_dtype, i);
        GaeStep st = gae_step(rewards[i], values[i], next, flag_at(terminated, term_dtype, i), trunc,
                              trunc ? trunc_values[i] : 0.0f, gamma, lambda);
        a = st.delta + st.c * a;
        adv[i] = a;
        if (ret) ret[i] = a + values[i];
        next = values[i];
      }
    }
  });
  if (norm_stats) {
    const int64_t m = t * n;
    double s1 = 0.0, s2 = 0.0;
    for (int64_t i = 0; i < m; ++i) s1 += adv[i];
    const double mean = s1 / static_cast<double>(m);
    for (int64_t i = 0; i < m; ++i) s2 += (adv[i] - mean) * (adv[i] - mean);
    const double sd = std::sqrt(s2 / static_cast<double>(m - 1));
    norm_stats[0] = static_cast<float>(mean);
    norm_stats[1] = static_cast<float>(sd);
    const float fm = static_cast<float>(mean), inv = static_cast<float>(1.0 / (sd + eps));
    for (int64_t i = 0; i < m; ++i) adv[i] = (adv[i] - fm) * inv;
  }
}

}  // namespace sa2va
