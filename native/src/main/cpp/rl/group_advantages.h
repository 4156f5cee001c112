// Group-relative advantages for G samples per prompt / image (no value function):
//   GRPO (TRL GRPOTrainer): A_i = (r_i - mean_group) / (std + eps), std with Bessel's correction (torch.std),
//        per group (scale_rewards="group", TRL default, eps = 1e-4) or over the whole batch ("batch");
//        mode "none" keeps A_i = r_i - mean_group (Dr. GRPO).
//   RLOO (TRL RLOOTrainer): A_i = r_i - (sum_group - r_i) / (G - 1), the leave-one-out baseline.
// rewards: float [B * G], group-major (sample j of group b at b*G + j); G >= 2.
// stats (optional): float [2, B] = {mean, std} of each group (batch mode: the batch std); the fraction of
// groups with std == 0 (TRL's frac_reward_zero_std) follows from row 1.
#pragma once
#include "../common/sa2va_api.h"

namespace sa2va {

enum GroupMode : int { GROUP_GRPO = 0, GROUP_GRPO_BATCH_STD = 1, GROUP_MEAN_ONLY = 2, GROUP_RLOO = 3 };

void group_advantages_cpu(const float* rewards, int64_t groups, int64_t g, int mode, float eps, float* adv,
                          float* stats);
void group_advantages_cuda(const float* rewards, int64_t groups, int64_t g, int mode, float eps, float* adv,
                           float* stats, cudaStream_t stream);

}  // namespace sa2va
