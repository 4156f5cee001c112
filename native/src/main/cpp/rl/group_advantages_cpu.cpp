// CPU implementation of the group advantages (see group_advantages.h), in double.
#include "group_advantages.h"
#include <cmath>
#include "rl_checks.h"
#include "../common/errors.h"

namespace sa2va {

void check_group_args(const char* fn, const float* rewards, int64_t groups, int64_t g, int mode, float eps,
                      const float* adv) {
  SA2VA_CHECK_ARG(rewards && adv, fn, ": null rewards or advantages");
  SA2VA_CHECK_ARG(groups >= 1, fn, ": need at least one group, got ", groups);
  SA2VA_CHECK_ARG(g >= 2, fn, ": group size must be >= 2 (a single sample has no baseline), got ", g);
  SA2VA_CHECK_ARG(mode >= GROUP_GRPO && mode <= GROUP_RLOO, fn, ": unknown mode ", mode);
  SA2VA_CHECK_ARG(eps >= 0.0f && std::isfinite(eps), fn, ": eps must be finite and >= 0, got ", eps);
}

void group_advantages_cpu(const float* rewards, int64_t groups, int64_t g, int mode, float eps, float* adv,
                          float* stats) {
  check_group_args("group_advantages_cpu", rewards, groups, g, mode, eps, adv);
  double batch_std = 0.0;
  if (mode == GROUP_GRPO_BATCH_STD) {
    const int64_t m = groups * g;
    double s = 0.0, ss = 0.0;
    for (int64_t i = 0; i < m; ++i) s += rewards[i];
    const double mean = s / static_cast<double>(m);
    for (int64_t i = 0; i < m; ++i) ss += (rewards[i] - mean) * (rewards[i] - mean);
    batch_std = std::sqrt(ss / static_cast<double>(m - 1));
  }
  for (int64_t b = 0; b < groups; ++b) {
    const float* r = rewards + b * g;
    double s = 0.0, ss = 0.0;
    for (int64_t j = 0; j < g; ++j) s += r[j];
    const double mean = s / static_cast<double>(g);
    for (int64_t j = 0; j < g; ++j) ss += (r[j] - mean) * (r[j] - mean);
    const double sd = mode == GROUP_GRPO_BATCH_STD ? batch_std : std::sqrt(ss / static_cast<double>(g - 1));
    for (int64_t j = 0; j < g; ++j) {
      double a;
      switch (mode) {
        case GROUP_RLOO: a = r[j] - (s - r[j]) / static_cast<double>(g - 1); break;
        case GROUP_MEAN_ONLY: a = r[j] - mean; break;
        default: a = (r[j] - mean) / (sd + eps); break;
      }
      adv[b * g + j] = static_cast<float>(a);
    }
    if (stats) {
      stats[b] = static_cast<float>(mean);
      stats[groups + b] = static_cast<float>(sd);
    }
  }
}

}  // namespace sa2va
