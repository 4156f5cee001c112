// Fused per-sample confusion counts of a thresholded mask against a binary target.
//
//   pred[n,i] = logits[n,i] > threshold        (threshold 0 on logits == sigmoid > 0.5, Sa2VA's rule)
//   gt[n,i]   = targets[n,i] != 0
//   out[n] = { TP, FP, FN, TN }  (int64, exact)
//
// logits: N x P contiguous, dtype F32, F16 or BF16; targets: N x P contiguous uint8; out: N x 4 int64.
// NaN logits compare false, i.e. count as background.
#pragma once
#include "../common/sa2va_api.h"

namespace sa2va {

void mask_stats_cpu(const void* logits, int dtype, const uint8_t* targets, int64_t n, int64_t p,
                    float threshold, int64_t* out);

// Device pointers; runs on `stream` without synchronising the host.
void mask_stats_cuda(const void* logits, int dtype, const uint8_t* targets, int64_t n, int64_t p,
                     float threshold, int64_t* out, cudaStream_t stream);

}  // namespace sa2va
