// Stochastic mask policy for RL on segmentation: every pixel is an independent Bernoulli action,
// m_i ~ Bernoulli(p_i), p_i = sigmoid(z_i / tau) (architecture.md §4: a thresholded mask is deterministic, so
// every sample of a group gets the same reward and the advantage is zero).
//
// Randomness: Philox4x32-10 (common/philox.h), pixel g = n*P + i uses word g % 4 of the block at counter index
// g / 4 under key `seed`, counter offset `offset`. The samples are a pure function of (seed, offset, logits):
// the same on CPU and CUDA (up to float rounding of sigmoid at |u - p| ~ 1e-7) and for any launch shape.
// Samples are returned bit-packed, [N, ceil(P/8)] bytes (layout in mask_pass.h).
//
// Per sample: log pi(m) = sum_i m_i log p_i + (1 - m_i) log(1 - p_i) and the entropy sum_i H(p_i), divided by
// P when `normalize` != 0. Optional: the scores of each sample against its target, as in mask_scores (group,
// ROI, spec; see mask_stats.h): stats [10, N], scores [6, N].
#pragma once
#include "../common/sa2va_api.h"

namespace sa2va {

// logits [N, P] (F32, F16, BF16); bits out [N, ceil(P/8)]; policy out float [2, N] = {log pi, entropy}.
// target/roi/spec/stats/scores as in mask_scores (target_kind MASK_NONE: no scoring).
void mask_sample_cpu(const void* logits, int dtype, int64_t n, int64_t p, float temperature, uint64_t seed,
                     uint64_t offset, int normalize, const void* target, int target_kind, const void* roi,
                     int roi_kind, int64_t group, const float* spec, uint8_t* bits, float* policy, double* stats,
                     float* scores);
void mask_sample_cuda(const void* logits, int dtype, int64_t n, int64_t p, float temperature, uint64_t seed,
                      uint64_t offset, int normalize, const void* target, int target_kind, const void* roi,
                      int roi_kind, int64_t group, const float* spec, uint8_t* bits, float* policy, double* stats,
                      float* scores, cudaStream_t stream);

// log pi and entropy of given samples under (possibly new) logits: policy [2, N]; per_pixel (optional)
// float [N, P] = log pi(m_i) of every pixel (token-level PPO ratios).
void mask_logprob_cpu(const void* logits, int dtype, const uint8_t* bits, int64_t n, int64_t p, float temperature,
                      int normalize, float* policy, float* per_pixel);
void mask_logprob_cuda(const void* logits, int dtype, const uint8_t* bits, int64_t n, int64_t p, float temperature,
                       int normalize, float* policy, float* per_pixel, cudaStream_t stream);

// grad = dF/dz for F = sum_n sum_i g_{n,i} log pi(m_{n,i}) + h sum_n sum_i H_{n,i}   (divided by P if normalize):
//   dF/dz_i = (g (m_i - p_i) - h x_i p_i (1 - p_i)) / tau,  x = z / tau.
// g is per sample (float [N], g_per_pixel = 0; e.g. the advantages) or per pixel (float [N, P], e.g. dL/dlogp
// from PpoLoss). grad has the dtype of the logits.
void mask_policy_grad_cpu(const void* logits, int dtype, const uint8_t* bits, int64_t n, int64_t p, float temperature,
                          int normalize, const float* g, int g_per_pixel, float h, void* grad);
void mask_policy_grad_cuda(const void* logits, int dtype, const uint8_t* bits, int64_t n, int64_t p,
                           float temperature, int normalize, const float* g, int g_per_pixel, float h, void* grad,
                           cudaStream_t stream);

}  // namespace sa2va
