// LoRA (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", 2021) for a linear layer with a frozen
// base weight W (d_out x d_in), optional bias, and trainable A (r x d_in), B (d_out x r):
//
//   y = x·Wᵀ + bias + s·(drop(x)·Aᵀ)·Bᵀ          s = alpha/r (or alpha/sqrt(r), rsLoRA)
//
// These entry points compute everything except the two big GEMMs with W (x·Wᵀ in forward, dY·W in backward):
// the caller runs those through libtorch (cuBLAS on CUDA) with beta = 1 onto the buffer written here, so the
// LoRA term costs one extra write and one extra read of the output instead of PEFT's 4-6 extra passes.
//
// On CUDA the single-adapter low-rank products are cuBLAS GEMMs too (cublasGemmEx, fp32 accumulation, loaded at
// run time from the process's libcublas), because our first hand-written skinny kernels ran at 4-17 % of DRAM
// bandwidth on the H200 where cuBLAS is near the roofline (benchmarks/RESULTS.md), except where the dropout mask
// enters a product (training with p > 0, bf16/fp16, r <= 128): there our tensor-core kernels apply the Philox mask
// (regenerated from the seed, never stored) while copying x (xs, dA) or in the epilogue (dx's term), which cuBLAS
// cannot, instead of passes over a transient keep⊙x (lora_set_fused switches for A/B measurements). Ours too: the
// bias start value and the multi-adapter kernels (a per-row choice of adapter cuBLAS cannot express).
//
// Layout: every matrix is row-major and contiguous; x is [rows, d_in] (rows = all leading dims flattened).
// dtype is F32, F16 or BF16 (F64 on the CPU only) for x, dY, W-sized outputs, A, B and xs; accumulation is fp32
// (fp64 for F64). Gradients of A and B are fp32 (fp64 for F64) and are ACCUMULATED (+=), like torch's .grad.
//
// Dropout (training only) acts on the LoRA input: drop(x)[t,k] = keep(t,k) ? x[t,k]/(1-p') : 0, where
// keep is regenerated from (seed, offset) in backward instead of being stored (lora_dropout.h gives the exact
// rule; p is quantised to p' = round(p·65536)/65536, and 1/(1-p') keeps E[drop(x)] = x).
//
// Multi-adapter inference: with adapter_index != null, A is [n_adapters, r, d_in], B is [n_adapters, d_out, r]
// and row t uses adapter adapter_index[t] with scale adapter_scales[a]; a row whose index is outside
// [0, n_adapters) gets no LoRA term (its output is the base output). adapter_scales lives on the same device as
// the tensors. All adapters share r (zero-pad smaller ranks: zero rows of A / columns of B change nothing).
#pragma once
#include "../common/sa2va_api.h"

namespace sa2va {

constexpr int64_t kLoraMaxRank = 256;

// Forward of the LoRA part, written into y (the caller then adds x·Wᵀ into y):
//   xs[t,j] = s_t · Σ_k drop(x)[t,k]·A[j,k]       (rows x r, dtype; saved for backward; may be null on CUDA for
//                                                   inference, then kept in scratch)
//   y[t,n]  = Σ_j xs[t,j]·B[n,j] + bias[n]         (bias may be null)
// s_t = scale (single adapter) or adapter_scales[adapter_index[t]].
void lora_forward_cpu(const void* x, int dtype, int64_t rows, int64_t d_in, int64_t d_out, int64_t rank,
                      const void* lora_a, const void* lora_b, const void* bias, float scale,
                      const int64_t* adapter_index, int64_t n_adapters, const float* adapter_scales,
                      float dropout_p, uint64_t seed, uint64_t offset, void* xs, void* y);

// Device pointers; runs on `stream` without host synchronisation. Scratch (split-K partials, and xs when null) comes
// from the library's per-stream workspace (common/workspace.h), which grows to the largest call seen on the stream.
void lora_forward_cuda(const void* x, int dtype, int64_t rows, int64_t d_in, int64_t d_out, int64_t rank,
                       const void* lora_a, const void* lora_b, const void* bias, float scale,
                       const int64_t* adapter_index, int64_t n_adapters, const float* adapter_scales,
                       float dropout_p, uint64_t seed, uint64_t offset, void* xs, void* y, cudaStream_t stream);

// Backward of the LoRA part with W frozen (single adapter), given dY [rows, d_out] and xs from the forward:
//   ds     = dY·B                                   [rows, r]   (scratch)
//   dB    += dYᵀ·xs                                 [d_out, r]
//   dA    += s·dsᵀ·drop(x)                          [r, d_in]
//   dx     = s·(ds·A) ⊙ keep/(1-p')                 [rows, d_in] (written; the caller then adds dY·W into dx)
void lora_backward_cpu(const void* x, const void* dy, const void* xs, int dtype, int64_t rows, int64_t d_in,
                       int64_t d_out, int64_t rank, const void* lora_a, const void* lora_b, float scale,
                       float dropout_p, uint64_t seed, uint64_t offset, void* grad_a, void* grad_b, void* dx);

void lora_backward_cuda(const void* x, const void* dy, const void* xs, int dtype, int64_t rows, int64_t d_in,
                        int64_t d_out, int64_t rank, const void* lora_a, const void* lora_b, float scale,
                        float dropout_p, uint64_t seed, uint64_t offset, float* grad_a, float* grad_b, void* dx,
                        cudaStream_t stream);

// Merge for deployment: W[n,k] += scale·Σ_j B[n,j]·A[j,k] (unmerge: pass -scale). W has `dtype`; A and B have
// `adapter_dtype` (F32, or F64 with an F64 W on the CPU), so merging from fp32 master weights rounds only once.
void lora_merge_cpu(void* w, int dtype, int64_t d_out, int64_t d_in, int64_t rank, const void* lora_a,
                    const void* lora_b, int adapter_dtype, float scale);
void lora_merge_cuda(void* w, int dtype, int64_t d_out, int64_t d_in, int64_t rank, const float* lora_a,
                     const float* lora_b, float scale, cudaStream_t stream);

// Programmatic dependent launch of the CUDA kernels on sm_90+ (overlaps each launch with the previous kernel's tail):
// 1 on, 0 off, -1 back to the default (on, unless the environment sets SA2VA_LORA_PDL=0). For A/B measurements.
void lora_set_pdl(int mode);

// Which kernels run the single-adapter products the dropout touches, for A/B measurements. 0 (default, or the
// environment's SA2VA_LORA_FUSED): always cuBLAS (keep⊙x through the workspace; measured faster on the H200); 1: with
// a dropout (16-bit dtypes, r <= 128) our kernels with the mask fused (xs and dA apply it while copying x, dx's
// low-rank term in its epilogue), cuBLAS otherwise; 2: as 1, and xs and dA in our kernel at p = 0 too; 3: as 1 but
// dx's term by cuBLAS and an in-place mask pass; -1: back to the default. Results agree within rounding in every
// mode.
void lora_set_fused(int mode);

// keep[i] = 1 when element i of a tensor with n elements survives dropout (the rule of lora_dropout.h); for
// tests and for users who need the mask itself.
void lora_dropout_mask_cpu(int64_t n, float dropout_p, uint64_t seed, uint64_t offset, uint8_t* keep);

}  // namespace sa2va
