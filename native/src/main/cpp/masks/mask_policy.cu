// CUDA implementation of the Bernoulli mask policy (see mask_policy.h): sampling and log-probabilities are the
// mask pass (mask_pass.cuh) in MODE_SAMPLE / MODE_EVAL; the gradient is an elementwise kernel over chunks.
#include "mask_policy.h"
#include <cmath>
#include "mask_stats.h"
#include "../common/errors.h"

#ifndef SA2VA_NO_CUDA
#include "mask_pass.cuh"

namespace sa2va {
namespace {

using maskpass::kEwThreads;

void check_temperature(const char* fn, float t) {
  SA2VA_CHECK_ARG(t > 0.0f && std::isfinite(t), fn, ": temperature must be finite and > 0, got ", t);
}

template <typename T, bool VEC>
__global__ void __launch_bounds__(kEwThreads) policy_grad_kernel(const T* __restrict__ z, const uint8_t* __restrict__ bits,
                                                                 int64_t n, int64_t p, float inv_tau, float norm,
                                                                 const float* __restrict__ g, int g_per_pixel, float h,
                                                                 T* __restrict__ grad) {
  const int64_t pitch = packed_pitch(p), total = n * pitch;
  for (int64_t gc = blockIdx.x * (int64_t)kEwThreads + threadIdx.x; gc < total; gc += (int64_t)gridDim.x * kEwThreads) {
    const int64_t i = gc / pitch, c = gc - i * pitch;
    const int valid = p - 8 * c < 8 ? static_cast<int>(p - 8 * c) : 8;
    float v[8], out[8];
    maskpass::load_floats<T, VEC>(z, i, p, c, valid, v);
    const uint32_t m = bits[gc];
    const float gs = g_per_pixel ? 0.0f : g[i] * norm;
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      if (k >= valid) break;
      const float gi = g_per_pixel ? g[i * p + 8 * c + k] * norm : gs;
      out[k] = policy_grad_pixel(v[k], (m >> k) & 1u, inv_tau, gi, h * norm);
    }
    maskpass::store_floats<T, VEC>(grad, i, p, c, valid, out);
  }
}

template <typename T>
void launch_grad(const T* z, const uint8_t* bits, int64_t n, int64_t p, float inv_tau, float norm, const float* g,
                 int g_per_pixel, float h, T* grad, cudaStream_t stream) {
  using maskpass::aligned_to;
  const bool vec = p % 8 == 0 && aligned_to(z, 16) && aligned_to(grad, 16);
  const unsigned blocks = maskpass::ew_blocks(n * packed_pitch(p));
  if (vec) SA2VA_LAUNCH(blocks, kEwThreads, stream, policy_grad_kernel<T, true>)(z, bits, n, p, inv_tau, norm, g, g_per_pixel, h, grad);
  else SA2VA_LAUNCH(blocks, kEwThreads, stream, policy_grad_kernel<T, false>)(z, bits, n, p, inv_tau, norm, g, g_per_pixel, h, grad);
  SA2VA_CUDA_CHECK_LAUNCH("policy_grad_kernel");
}

}  // namespace

void mask_sample_cuda(const void* logits, int dtype, int64_t n, int64_t p, float temperature, uint64_t seed,
                      uint64_t offset, int normalize, const void* target, int target_kind, const void* roi,
                      int roi_kind, int64_t group, const float* spec, uint8_t* bits, float* policy, double* stats,
                      float* scores, cudaStream_t stream) {
  const char* fn = "mask_sample_cuda";
  detail::check_sizes(fn, n, p, group);
  detail::check_pred(fn, logits, dtype, PRED_LOGITS, true);
  check_temperature(fn, temperature);
  detail::check_mask_input(fn, "target", target, target_kind, true);
  detail::check_mask_input(fn, "roi", roi, roi_kind, true);
  SA2VA_CHECK_ARG(bits != nullptr, fn, ": bits output is null");
  SA2VA_CHECK_ARG(target_kind != MASK_NONE || (stats == nullptr && scores == nullptr), fn, ": scores need a target");
  maskpass::Args a{};
  a.pred = logits;
  a.pred_kind = PRED_LOGITS;
  a.target = static_cast<const uint8_t*>(target);
  a.target_kind = target_kind;
  a.roi = static_cast<const uint8_t*>(roi);
  a.roi_kind = roi_kind;
  a.n = n;
  a.p = p;
  a.group = group;
  a.inv_tau = 1.0f / temperature;
  a.seed = seed;
  a.offset = offset;
  a.normalize = normalize;
  a.bits_out = bits;
  for (int k = 0; k < SPEC_LEN; ++k) a.spec.v[k] = spec ? spec[k] : 0.0f;
  a.out = MaskOut{stats, scores, nullptr, policy, nullptr, nullptr};
  maskpass::launch<MODE_SAMPLE>(a, dtype, stream);
}

void mask_logprob_cuda(const void* logits, int dtype, const uint8_t* bits, int64_t n, int64_t p, float temperature,
                       int normalize, float* policy, float* per_pixel, cudaStream_t stream) {
  const char* fn = "mask_logprob_cuda";
  detail::check_sizes(fn, n, p, 1);
  detail::check_pred(fn, logits, dtype, PRED_LOGITS, true);
  check_temperature(fn, temperature);
  SA2VA_CHECK_ARG(bits != nullptr, fn, ": bits is null");
  maskpass::Args a{};
  a.pred = logits;
  a.pred_kind = PRED_LOGITS;
  a.target_kind = MASK_NONE;
  a.roi_kind = MASK_NONE;
  a.n = n;
  a.p = p;
  a.group = 1;
  a.inv_tau = 1.0f / temperature;
  a.normalize = normalize;
  a.bits_in = bits;
  a.per_pixel = per_pixel;
  a.out = MaskOut{nullptr, nullptr, nullptr, policy, nullptr, nullptr};
  maskpass::launch<MODE_EVAL>(a, dtype, stream);
}

void mask_policy_grad_cuda(const void* logits, int dtype, const uint8_t* bits, int64_t n, int64_t p,
                           float temperature, int normalize, const float* g, int g_per_pixel, float h, void* grad,
                           cudaStream_t stream) {
  const char* fn = "mask_policy_grad_cuda";
  detail::check_sizes(fn, n, p, 1);
  detail::check_pred(fn, logits, dtype, PRED_LOGITS, true);
  check_temperature(fn, temperature);
  SA2VA_CHECK_ARG(bits && g && grad, fn, ": null bits, g or grad");
  const float inv_tau = 1.0f / temperature;
  const float norm = normalize ? 1.0f / static_cast<float>(p) : 1.0f;
  switch (dtype) {
    case F32:
      launch_grad(static_cast<const float*>(logits), bits, n, p, inv_tau, norm, g, g_per_pixel, h,
                  static_cast<float*>(grad), stream);
      break;
    case F16:
      launch_grad(static_cast<const f16_t*>(logits), bits, n, p, inv_tau, norm, g, g_per_pixel, h,
                  static_cast<f16_t*>(grad), stream);
      break;
    default:
      launch_grad(static_cast<const bf16_t*>(logits), bits, n, p, inv_tau, norm, g, g_per_pixel, h,
                  static_cast<bf16_t*>(grad), stream);
      break;
  }
}

}  // namespace sa2va

#else  // built without nvcc

namespace sa2va {
void mask_sample_cuda(const void*, int, int64_t, int64_t, float, uint64_t, uint64_t, int, const void*, int, const void*,
                      int, int64_t, const float*, uint8_t*, float*, double*, float*, cudaStream_t) {
  fail_no_cuda("mask_sample_cuda");
}
void mask_logprob_cuda(const void*, int, const uint8_t*, int64_t, int64_t, float, int, float*, float*, cudaStream_t) {
  fail_no_cuda("mask_logprob_cuda");
}
void mask_policy_grad_cuda(const void*, int, const uint8_t*, int64_t, int64_t, float, int, const float*, int, float,
                           void*, cudaStream_t) {
  fail_no_cuda("mask_policy_grad_cuda");
}
}  // namespace sa2va

#endif
