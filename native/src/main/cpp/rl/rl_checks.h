// Argument checks shared by the CPU and CUDA entry points of the RL kernels (throw std::invalid_argument).
#pragma once
#include <cstdint>

namespace sa2va {

void check_gae_args(const char* fn, const float* rewards, const float* values, const void* terminated, int term_dtype,
                    const void* truncated, int trunc_dtype, const float* trunc_values, int64_t t, int64_t n,
                    float gamma, float lambda, float eps, const float* adv, const float* norm_stats);
void check_group_args(const char* fn, const float* rewards, int64_t groups, int64_t g, int mode, float eps,
                      const float* adv);
void check_ppo_args(const char* fn, const float* logp, const float* logp_old, const float* adv, int64_t b, int64_t l,
                    const float* values, const float* values_old, const float* returns, const float* params,
                    const float* scalars, const float* dlogp, const float* dvalue);

}  // namespace sa2va
