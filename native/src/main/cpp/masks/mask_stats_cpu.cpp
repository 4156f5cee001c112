// CPU implementation of mask_stats (see mask_stats.h). Also the reference the CUDA kernel is tested
// against, so it stays a plain loop.
#include "mask_stats.h"
#include "../common/dtype.h"
#include "../common/errors.h"
#include "../common/parallel.h"

namespace sa2va {

namespace {
template <typename T>
void count_rows(const T* logits, const uint8_t* targets, int64_t p, float thr, int64_t row_begin,
                int64_t row_end, int64_t* out) {
  for (int64_t n = row_begin; n < row_end; ++n) {
    const T* z = logits + n * p;
    const uint8_t* y = targets + n * p;
    int64_t tp = 0, fp = 0, fn = 0;
    for (int64_t i = 0; i < p; ++i) {
      bool pr = to_float(z[i]) > thr;
      bool gt = y[i] != 0;
      tp += pr & gt;
      fp += pr & !gt;
      fn += !pr & gt;
    }
    out[n * 4 + 0] = tp;
    out[n * 4 + 1] = fp;
    out[n * 4 + 2] = fn;
    out[n * 4 + 3] = p - tp - fp - fn;
  }
}
}  // namespace

void mask_stats_cpu(const void* logits, int dtype, const uint8_t* targets, int64_t n, int64_t p,
                    float threshold, int64_t* out) {
  SA2VA_CHECK_ARG(logits && targets && out, "mask_stats_cpu: null pointer");
  SA2VA_CHECK_ARG(n >= 1 && p >= 1, "mask_stats_cpu: need n >= 1 and p >= 1, got n=", n, " p=", p);
  // One sample per task; a sample is long enough (>= thousands of pixels) to amortise a thread.
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    switch (dtype) {
      case F32: count_rows(static_cast<const float*>(logits), targets, p, threshold, b, e, out); break;
      case F16: count_rows(static_cast<const f16_t*>(logits), targets, p, threshold, b, e, out); break;
      case BF16: count_rows(static_cast<const bf16_t*>(logits), targets, p, threshold, b, e, out); break;
      default: fail_arg(str_cat("mask_stats_cpu: logits dtype ", dtype_name(dtype),
                                " not supported (float32, float16, bfloat16)"));
    }
  });
}

}  // namespace sa2va
