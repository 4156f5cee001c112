// CUDA implementation of the mask statistics / scores / losses pass (see mask_stats.h and mask_pass.cuh).
// confusion() is the same pass with only the int64 counts requested: one launch, no memset.
#include "mask_stats.h"
#include "../common/errors.h"

#ifndef SA2VA_NO_CUDA
#include "mask_pass.cuh"

namespace sa2va {
namespace {

using maskpass::kEwThreads;

// d loss / d z per pixel of every sample (grid-stride over all chunks of all samples).
template <typename T, bool VEC>
__global__ void __launch_bounds__(kEwThreads) loss_grad_kernel(const T* __restrict__ z, const uint8_t* target, int tkind,
                                                               const uint8_t* roi, int rkind, int64_t n, int64_t p,
                                                               int64_t group, const float* __restrict__ coef, float scale,
                                                               float pos_weight, T* __restrict__ grad) {
  const int64_t pitch = packed_pitch(p), total = n * pitch;
  for (int64_t gc = blockIdx.x * (int64_t)kEwThreads + threadIdx.x; gc < total; gc += (int64_t)gridDim.x * kEwThreads) {
    const int64_t i = gc / pitch, c = gc - i * pitch, trow = i / group;
    const int valid = p - 8 * c < 8 ? static_cast<int>(p - 8 * c) : 8;
    uint32_t bad = 0;
    uint32_t y = maskpass::load_mask_bits<VEC>(target, tkind, trow, p, pitch, c, valid, bad);
    uint32_t in = (1u << valid) - 1u;
    if (rkind != MASK_NONE) in &= maskpass::load_mask_bits<VEC>(roi, rkind, trow, p, pitch, c, valid, bad);
    const float ca = coef[CO_A * n + i], cb = coef[CO_B * n + i], cc = coef[CO_BCE * n + i];
    float v[8], g[8];
    maskpass::load_floats<T, VEC>(z, i, p, c, valid, v);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      g[k] = ((in >> k) & 1u) ? scale * loss_grad_pixel(v[k], (y >> k) & 1u, ca, cb, cc, pos_weight) : 0.0f;
    }
    maskpass::store_floats<T, VEC>(grad, i, p, c, valid, g);
  }
}

template <typename T>
void launch_loss_grad(const T* z, const uint8_t* target, int tkind, const uint8_t* roi, int rkind, int64_t n, int64_t p,
                      int64_t group, const float* coef, float scale, float pos_weight, T* grad, cudaStream_t stream) {
  using maskpass::aligned_to;
  using maskpass::is_u8_kind;
  bool vec = p % 8 == 0 && aligned_to(z, 16) && aligned_to(grad, 16);
  if (is_u8_kind(tkind)) vec = vec && aligned_to(target, 8);
  if (is_u8_kind(rkind)) vec = vec && aligned_to(roi, 8);
  const unsigned blocks = maskpass::ew_blocks(n * packed_pitch(p));
  if (vec) {
    SA2VA_LAUNCH(blocks, kEwThreads, stream, loss_grad_kernel<T, true>)(z, target, tkind, roi, rkind, n, p, group, coef, scale,
                                                                 pos_weight, grad);
  } else {
    SA2VA_LAUNCH(blocks, kEwThreads, stream, loss_grad_kernel<T, false>)(z, target, tkind, roi, rkind, n, p, group, coef, scale,
                                                                  pos_weight, grad);
  }
  SA2VA_CUDA_CHECK_LAUNCH("loss_grad_kernel");
}

// One output byte per thread; invalid values are summed per thread and added once.
template <bool VEC>
__global__ void pack_kernel(const uint8_t* __restrict__ src, int64_t n, int64_t p, uint8_t* __restrict__ out,
                            unsigned long long* invalid) {
  const int64_t pitch = packed_pitch(p), total = n * pitch;
  uint32_t bad = 0;
  for (int64_t gc = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; gc < total; gc += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = gc / pitch, c = gc - i * pitch;
    const int valid = p - 8 * c < 8 ? static_cast<int>(p - 8 * c) : 8;
    out[gc] = static_cast<uint8_t>(maskpass::load_mask_bits<VEC>(src, MASK_U8, i, p, pitch, c, valid, bad));
  }
  if (bad) atomicAdd(invalid, static_cast<unsigned long long>(bad));
}

__global__ void unpack_kernel(const uint8_t* __restrict__ bits, int64_t n, int64_t p, uint8_t* __restrict__ out) {
  const int64_t pitch = packed_pitch(p), total = n * p;
  for (int64_t g = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; g < total; g += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = g / p, k = g - i * p;
    out[g] = (bits[i * pitch + k / 8] >> (k % 8)) & 1u;
  }
}

}  // namespace

void mask_scores_cuda(const void* pred, int pred_dtype, int pred_kind, const void* target, int target_kind,
                      const void* roi, int roi_kind, int64_t n, int64_t p, int64_t group, float threshold,
                      const float* spec, double* stats, float* scores, int64_t* confusion, float* loss, float* coef,
                      cudaStream_t stream) {
  const char* fn = "mask_scores_cuda";
  detail::check_sizes(fn, n, p, group);
  detail::check_pred(fn, pred, pred_dtype, pred_kind, loss || coef);
  detail::check_mask_input(fn, "target", target, target_kind, false);
  detail::check_mask_input(fn, "roi", roi, roi_kind, true);
  maskpass::Args a{};
  a.pred = pred;
  a.pred_kind = pred_kind;
  a.target = static_cast<const uint8_t*>(target);
  a.target_kind = target_kind;
  a.roi = static_cast<const uint8_t*>(roi);
  a.roi_kind = roi_kind;
  a.n = n;
  a.p = p;
  a.group = group;
  a.threshold = threshold;
  for (int k = 0; k < SPEC_LEN; ++k) a.spec.v[k] = spec ? spec[k] : 0.0f;
  a.want_bce = (loss || coef) && pred_kind == PRED_LOGITS;
  a.pos_weight = a.spec.v[SPEC_POS_WEIGHT];
  a.out = MaskOut{stats, scores, confusion, nullptr, loss, coef};
  maskpass::launch<MODE_STATS>(a, pred_dtype, stream);
}

void mask_stats_cuda(const void* logits, int dtype, const uint8_t* targets, int64_t n, int64_t p, float threshold,
                     int64_t* out, cudaStream_t stream) {
  SA2VA_CHECK_ARG(logits && targets && out, "mask_stats_cuda: null pointer");
  SA2VA_CHECK_ARG(n >= 1 && p >= 1, "mask_stats_cuda: need n >= 1 and p >= 1, got n=", n, " p=", p);
  SA2VA_CHECK_ARG(dtype == F32 || dtype == F16 || dtype == BF16, "mask_stats_cuda: logits dtype ", dtype_name(dtype),
                  " not supported (float32, float16, bfloat16)");
  mask_scores_cuda(logits, dtype, PRED_LOGITS, targets, MASK_U8_NONZERO, nullptr, MASK_NONE, n, p, 1, threshold,
                   nullptr, nullptr, nullptr, out, nullptr, nullptr, stream);
}

void mask_loss_grad_cuda(const void* logits, int dtype, const void* target, int target_kind, const void* roi,
                         int roi_kind, int64_t n, int64_t p, int64_t group, const float* coef, float scale,
                         float pos_weight, void* grad, cudaStream_t stream) {
  const char* fn = "mask_loss_grad_cuda";
  detail::check_sizes(fn, n, p, group);
  detail::check_pred(fn, logits, dtype, PRED_LOGITS, true);
  detail::check_mask_input(fn, "target", target, target_kind, false);
  detail::check_mask_input(fn, "roi", roi, roi_kind, true);
  SA2VA_CHECK_ARG(coef && grad, fn, ": null coef or grad");
  const uint8_t* y = static_cast<const uint8_t*>(target);
  const uint8_t* r = static_cast<const uint8_t*>(roi);
  switch (dtype) {
    case F32:
      launch_loss_grad(static_cast<const float*>(logits), y, target_kind, r, roi_kind, n, p, group, coef, scale,
                       pos_weight, static_cast<float*>(grad), stream);
      break;
    case F16:
      launch_loss_grad(static_cast<const f16_t*>(logits), y, target_kind, r, roi_kind, n, p, group, coef, scale,
                       pos_weight, static_cast<f16_t*>(grad), stream);
      break;
    default:
      launch_loss_grad(static_cast<const bf16_t*>(logits), y, target_kind, r, roi_kind, n, p, group, coef, scale,
                       pos_weight, static_cast<bf16_t*>(grad), stream);
      break;
  }
}

void mask_pack_cuda(const uint8_t* src, int64_t n, int64_t p, uint8_t* out, int64_t* invalid, cudaStream_t stream) {
  SA2VA_CHECK_ARG(src && out && invalid, "mask_pack_cuda: null pointer");
  detail::check_sizes("mask_pack_cuda", n, p, 1);
  const unsigned blocks = maskpass::ew_blocks(n * packed_pitch(p));
  auto* inv = reinterpret_cast<unsigned long long*>(invalid);
  if (p % 8 == 0 && maskpass::aligned_to(src, 8)) SA2VA_LAUNCH(blocks, kEwThreads, stream, pack_kernel<true>)(src, n, p, out, inv);
  else SA2VA_LAUNCH(blocks, kEwThreads, stream, pack_kernel<false>)(src, n, p, out, inv);
  SA2VA_CUDA_CHECK_LAUNCH("pack_kernel");
}

void mask_set_waves(int waves) { maskpass::g_waves.store(waves >= 1 && waves <= 16 ? waves : 0); }

void mask_unpack_cuda(const uint8_t* bits, int64_t n, int64_t p, uint8_t* out, cudaStream_t stream) {
  SA2VA_CHECK_ARG(bits && out, "mask_unpack_cuda: null pointer");
  detail::check_sizes("mask_unpack_cuda", n, p, 1);
  SA2VA_LAUNCH(maskpass::ew_blocks((n * p + 7) / 8), kEwThreads, stream, unpack_kernel)(bits, n, p, out);
  SA2VA_CUDA_CHECK_LAUNCH("unpack_kernel");
}

}  // namespace sa2va

#else  // built without nvcc

namespace sa2va {
void mask_stats_cuda(const void*, int, const uint8_t*, int64_t, int64_t, float, int64_t*, cudaStream_t) {
  fail_no_cuda("mask_stats_cuda");
}
void mask_scores_cuda(const void*, int, int, const void*, int, const void*, int, int64_t, int64_t, int64_t, float,
                      const float*, double*, float*, int64_t*, float*, float*, cudaStream_t) {
  fail_no_cuda("mask_scores_cuda");
}
void mask_loss_grad_cuda(const void*, int, const void*, int, const void*, int, int64_t, int64_t, int64_t, const float*,
                         float, float, void*, cudaStream_t) {
  fail_no_cuda("mask_loss_grad_cuda");
}
void mask_pack_cuda(const uint8_t*, int64_t, int64_t, uint8_t*, int64_t*, cudaStream_t) { fail_no_cuda("mask_pack_cuda"); }
void mask_unpack_cuda(const uint8_t*, int64_t, int64_t, uint8_t*, cudaStream_t) { fail_no_cuda("mask_unpack_cuda"); }
void mask_set_waves(int) {}
}  // namespace sa2va

#endif
