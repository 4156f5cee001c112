// Per-sample statistics, scores, rewards and supervised losses of masks against binary targets, in one pass
// over the pixels (formulas shared by CPU and CUDA in mask_pass.h).
//
// Layout: N samples x P pixels, row-major and contiguous. With `group` = G > 1, samples n share target row
// n / G (G predictions of one image, e.g. RL samples); the region of interest (ROI, e.g. a fundus field of
// view) is indexed the same way and restricts every count and sum to the pixels inside it.
//
// Inputs, by kind (MaskKind in mask_pass.h):
//   pred   PRED_LOGITS / PRED_PROBS (dtype F32, F16, BF16): hard = value > threshold, soft = sigmoid / value;
//          MASK_U8 (0/1) or MASK_PACKED (dtype U8): hard = soft = the bit.
//   target MASK_U8 (values other than 0/1 are invalid), MASK_U8_NONZERO (non-zero = foreground), MASK_PACKED.
//   roi    MASK_NONE, MASK_U8_NONZERO or MASK_PACKED.
// Outputs (any may be null; metric-major so that a row, e.g. the rewards, is contiguous):
//   stats     double [10, N]: TP, FP, FN, TN (exact), sum p*y, sum p, sum y, sum BCE(z, y), invalid target/ROI
//             values, invalid prediction values
//   scores    float  [6, N]: reward, Dice, Recall, Precision, IoU, Tversky(alpha, beta); from the counts, or from
//             the soft sums when spec[SPEC_SOFT] != 0 (soft Dice = 2 sum py / (sum p + sum y), ...)
//   confusion int64  [N, 4]: TP, FP, FN, TN
//   loss      float  [4, N]: total, mean BCE over the ROI, soft-Dice loss, (focal) Tversky loss (logits only)
//   coef      float  [3, N]: per-sample coefficients of the loss gradient (for mask_loss_grad)
// Empty denominators (e.g. both masks empty) score 1, or NaN when spec[SPEC_EMPTY_NAN] != 0. A sample with an
// invalid value (target not 0/1, NaN logit, probability outside [0, 1]) has NaN scores and losses and a
// non-zero stats[ST_BAD_TARGET] / stats[ST_BAD_PRED]; its counts are still computed (NaN logits count as background).
//
// Supervised losses (per sample, S = sum p*y, A = sum p, B = sum y over the ROI, s = smoothing):
//   BCE  = mean over the ROI of  pos_weight*y*softplus(-z) + (1-y)*softplus(z)   (torch BCEWithLogits)
//   Dice = 1 - (2S + s) / (A + B + s)                                              (MONAI DiceLoss, sigmoid)
//   TI   = (S + s) / (S + alpha (A - S) + beta (B - S) + s),  Tversky loss = (1 - TI)^gamma
//   total = w_bce BCE + w_dice Dice + w_tversky (1 - TI)^gamma
// d total / d p_i = a + b*y_i with
//   a = w_dice (2S+s)/D^2 + w_tv k alpha (S+s)/E^2,  b = -2 w_dice/D - w_tv k (1/E - (1-alpha-beta)(S+s)/E^2),
//   D = A + B + s, E = S + alpha (A-S) + beta (B-S) + s, k = gamma (1-TI)^(gamma-1);
// mask_loss_grad turns that into d total / d z_i = (a + b y_i) p_i (1 - p_i) + (w_bce / |ROI|) dBCE_i/dz_i.
#pragma once
#include "../common/sa2va_api.h"

namespace sa2va {

// Confusion counts of thresholded logits against a uint8 target (non-zero = foreground):
// out[n] = {TP, FP, FN, TN}, int64. NaN logits count as background.
void mask_stats_cpu(const void* logits, int dtype, const uint8_t* targets, int64_t n, int64_t p,
                    float threshold, int64_t* out);
void mask_stats_cuda(const void* logits, int dtype, const uint8_t* targets, int64_t n, int64_t p,
                     float threshold, int64_t* out, cudaStream_t stream);

// Full waves of resident blocks the CUDA mask-pass kernels launch (1..16; other values: back to the default, the
// environment's SA2VA_MASK_WAVES, else 1). For A/B measurements; results differ from one setting to another only by
// the order in which the soft sums' partials add up.
void mask_set_waves(int waves);

// The general pass (see above). spec: SPEC_LEN floats (mask_pass.h), or null for all zeros.
void mask_scores_cpu(const void* pred, int pred_dtype, int pred_kind, const void* target, int target_kind,
                     const void* roi, int roi_kind, int64_t n, int64_t p, int64_t group, float threshold,
                     const float* spec, double* stats, float* scores, int64_t* confusion, float* loss, float* coef);
void mask_scores_cuda(const void* pred, int pred_dtype, int pred_kind, const void* target, int target_kind,
                      const void* roi, int roi_kind, int64_t n, int64_t p, int64_t group, float threshold,
                      const float* spec, double* stats, float* scores, int64_t* confusion, float* loss, float* coef,
                      cudaStream_t stream);

// grad[n, i] = scale * d total_n / d z_i (0 outside the ROI), from `coef` of mask_scores; grad has the dtype of
// the logits (F32, F16, BF16) and may alias nothing else.
void mask_loss_grad_cpu(const void* logits, int dtype, const void* target, int target_kind, const void* roi,
                        int roi_kind, int64_t n, int64_t p, int64_t group, const float* coef, float scale,
                        float pos_weight, void* grad);
void mask_loss_grad_cuda(const void* logits, int dtype, const void* target, int target_kind, const void* roi,
                         int roi_kind, int64_t n, int64_t p, int64_t group, const float* coef, float scale,
                         float pos_weight, void* grad, cudaStream_t stream);

// uint8 0/1 masks [N, P] -> bit-packed [N, ceil(P/8)]; invalid[0] += number of values other than 0/1
// (each counts as foreground). The CUDA version adds to invalid[0] on the device (zero it first).
void mask_pack_cpu(const uint8_t* src, int64_t n, int64_t p, uint8_t* out, int64_t* invalid);
void mask_pack_cuda(const uint8_t* src, int64_t n, int64_t p, uint8_t* out, int64_t* invalid, cudaStream_t stream);
// Bit-packed [N, ceil(P/8)] -> uint8 0/1 [N, P].
void mask_unpack_cpu(const uint8_t* bits, int64_t n, int64_t p, uint8_t* out);
void mask_unpack_cuda(const uint8_t* bits, int64_t n, int64_t p, uint8_t* out, cudaStream_t stream);

namespace detail {
// Argument checks shared by the CPU and CUDA entry points (throw std::invalid_argument naming `fn`).
void check_mask_input(const char* fn, const char* what, const void* ptr, int kind, bool optional);
void check_pred(const char* fn, const void* pred, int dtype, int kind, bool float_only);
void check_sizes(const char* fn, int64_t n, int64_t p, int64_t group);
}  // namespace detail

}  // namespace sa2va
