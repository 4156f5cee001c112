// CPU implementation of the mask statistics / scores / losses pass (see mask_stats.h). One sample per task;
// the per-chunk math and the epilogue are the ones the CUDA kernel uses (mask_pass.h).
#include "mask_stats.h"
#include <type_traits>
#include <vector>
#include "mask_pass.h"
#include "../common/dtype.h"
#include "../common/errors.h"
#include "../common/parallel.h"

namespace sa2va {

namespace detail {

void check_mask_input(const char* fn, const char* what, const void* ptr, int kind, bool optional) {
  if (kind == MASK_NONE) {
    SA2VA_CHECK_ARG(optional, fn, ": ", what, " is required");
    return;
  }
  SA2VA_CHECK_ARG(kind == MASK_U8 || kind == MASK_U8_NONZERO || kind == MASK_PACKED, fn, ": ", what,
                  " kind ", kind, " is not a mask kind (uint8, uint8 non-zero, bit-packed)");
  SA2VA_CHECK_ARG(ptr != nullptr, fn, ": ", what, " pointer is null");
}

void check_pred(const char* fn, const void* pred, int dtype, int kind, bool float_only) {
  SA2VA_CHECK_ARG(pred != nullptr, fn, ": prediction pointer is null");
  if (kind == PRED_LOGITS || kind == PRED_PROBS) {
    SA2VA_CHECK_ARG(dtype == F32 || dtype == F16 || dtype == BF16, fn, ": prediction dtype ", dtype_name(dtype),
                    " not supported (float32, float16, bfloat16)");
  } else {
    SA2VA_CHECK_ARG(!float_only, fn, ": needs logits");
    SA2VA_CHECK_ARG(kind == MASK_U8 || kind == MASK_U8_NONZERO || kind == MASK_PACKED, fn, ": prediction kind ",
                    kind, " unknown");
    SA2VA_CHECK_ARG(dtype == U8, fn, ": binary predictions must be uint8, got ", dtype_name(dtype));
  }
}

void check_sizes(const char* fn, int64_t n, int64_t p, int64_t group) {
  SA2VA_CHECK_ARG(n >= 1 && p >= 1, fn, ": need n >= 1 and p >= 1, got n=", n, " p=", p);
  // Per-block counts are 32-bit on the device.
  SA2VA_CHECK_ARG(p < (int64_t(1) << 31), fn, ": at most 2^31-1 pixels per sample, got ", p);
  SA2VA_CHECK_ARG(group >= 1 && n % group == 0, fn, ": group size ", group, " must divide the ", n, " samples");
}

}  // namespace detail

namespace {

MaskSpec load_spec(const float* spec) {
  MaskSpec s;
  for (int k = 0; k < SPEC_LEN; ++k) s.v[k] = spec ? spec[k] : 0.0f;
  return s;
}

struct StatsArgs {
  const void* pred; int pred_kind;
  const uint8_t* target; int target_kind;
  const uint8_t* roi; int roi_kind;
  int64_t n, p, group; float thr; bool want_bce; float pos_weight;
};

template <typename T>
MaskTotals stats_row(const StatsArgs& a, int64_t n) {
  MaskTotals t{0, 0, 0, 0, 0, 0, {0.0, 0.0, 0.0}};
  const int64_t chunks = packed_pitch(a.p), trow = n / a.group;
  const bool logits = a.pred_kind == PRED_LOGITS;
  for (int64_t c = 0; c < chunks; ++c) {
    const int valid = static_cast<int>(a.p - 8 * c < 8 ? a.p - 8 * c : 8);
    uint32_t bad = 0, badp = 0;
    uint32_t y = mask_bits_scalar(a.target, a.target_kind, trow, a.p, c, valid, bad);
    uint32_t in = (1u << valid) - 1u;
    if (a.roi_kind != MASK_NONE) in &= mask_bits_scalar(a.roi, a.roi_kind, trow, a.p, c, valid, bad);
    uint32_t h;
    if constexpr (std::is_same<T, uint8_t>::value) {
      h = mask_bits_scalar(static_cast<const uint8_t*>(a.pred), a.pred_kind, n, a.p, c, valid, badp);
    } else {
      float v[8];
      floats_scalar(static_cast<const T*>(a.pred), n, a.p, c, valid, v);
      FloatChunk fc = stats_float_chunk(v, valid, logits, a.thr, y, in, a.want_bce, a.pos_weight);
      h = fc.hbits;
      badp += fc.bad;
      t.f[0] += fc.spy;
      t.f[1] += fc.sp;
      t.f[2] += fc.bce;
    }
    ChunkCounts cc = count_bits(h, y, in);
    t.tp += cc.tp;
    t.fp += cc.fp;
    t.fn += cc.fn;
    t.cnt += cc.cnt;
    t.bad_target += bad;
    t.bad_pred += badp;
  }
  return t;
}

template <typename T>
void store_floats(T* row, int64_t c, int valid, const float* g) {
  for (int k = 0; k < valid; ++k) row[8 * c + k] = from_float<T>(g[k]);
}

}  // namespace

void mask_scores_cpu(const void* pred, int pred_dtype, int pred_kind, const void* target, int target_kind,
                     const void* roi, int roi_kind, int64_t n, int64_t p, int64_t group, float threshold,
                     const float* spec, double* stats, float* scores, int64_t* confusion, float* loss, float* coef) {
  const char* fn = "mask_scores_cpu";
  detail::check_sizes(fn, n, p, group);
  detail::check_pred(fn, pred, pred_dtype, pred_kind, loss || coef);
  detail::check_mask_input(fn, "target", target, target_kind, false);
  detail::check_mask_input(fn, "roi", roi, roi_kind, true);
  const MaskSpec s = load_spec(spec);
  const bool float_pred = pred_kind == PRED_LOGITS || pred_kind == PRED_PROBS;
  StatsArgs a{pred, pred_kind, static_cast<const uint8_t*>(target), target_kind, static_cast<const uint8_t*>(roi),
              roi_kind, n, p, group, threshold, (loss || coef) && pred_kind == PRED_LOGITS, s.v[SPEC_POS_WEIGHT]};
  MaskOut o{stats, scores, confusion, nullptr, loss, coef};
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      MaskTotals t;
      if (!float_pred) t = stats_row<uint8_t>(a, i);
      else if (pred_dtype == F32) t = stats_row<float>(a, i);
      else if (pred_dtype == F16) t = stats_row<f16_t>(a, i);
      else t = stats_row<bf16_t>(a, i);
      mask_finish(t, i, n, p, MODE_STATS, float_pred, false, s, o);
    }
  });
}

void mask_stats_cpu(const void* logits, int dtype, const uint8_t* targets, int64_t n, int64_t p, float threshold,
                    int64_t* out) {
  SA2VA_CHECK_ARG(logits && targets && out, "mask_stats_cpu: null pointer");
  SA2VA_CHECK_ARG(n >= 1 && p >= 1, "mask_stats_cpu: need n >= 1 and p >= 1, got n=", n, " p=", p);
  SA2VA_CHECK_ARG(dtype == F32 || dtype == F16 || dtype == BF16, "mask_stats_cpu: logits dtype ", dtype_name(dtype),
                  " not supported (float32, float16, bfloat16)");
  mask_scores_cpu(logits, dtype, PRED_LOGITS, targets, MASK_U8_NONZERO, nullptr, MASK_NONE, n, p, 1, threshold,
                  nullptr, nullptr, nullptr, out, nullptr, nullptr);
}

void mask_loss_grad_cpu(const void* logits, int dtype, const void* target, int target_kind, const void* roi,
                        int roi_kind, int64_t n, int64_t p, int64_t group, const float* coef, float scale,
                        float pos_weight, void* grad) {
  const char* fn = "mask_loss_grad_cpu";
  detail::check_sizes(fn, n, p, group);
  detail::check_pred(fn, logits, dtype, PRED_LOGITS, true);
  detail::check_mask_input(fn, "target", target, target_kind, false);
  detail::check_mask_input(fn, "roi", roi, roi_kind, true);
  SA2VA_CHECK_ARG(coef && grad, fn, ": null coef or grad");
  const uint8_t* y8 = static_cast<const uint8_t*>(target);
  const uint8_t* r8 = static_cast<const uint8_t*>(roi);
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t trow = i / group, chunks = packed_pitch(p);
      const float ca = coef[CO_A * n + i], cb = coef[CO_B * n + i], cc = coef[CO_BCE * n + i];
      for (int64_t c = 0; c < chunks; ++c) {
        const int valid = static_cast<int>(p - 8 * c < 8 ? p - 8 * c : 8);
        uint32_t bad = 0;
        uint32_t y = mask_bits_scalar(y8, target_kind, trow, p, c, valid, bad);
        uint32_t in = (1u << valid) - 1u;
        if (roi_kind != MASK_NONE) in &= mask_bits_scalar(r8, roi_kind, trow, p, c, valid, bad);
        float z[8], g[8];
        switch (dtype) {
          case F32: floats_scalar(static_cast<const float*>(logits), i, p, c, valid, z); break;
          case F16: floats_scalar(static_cast<const f16_t*>(logits), i, p, c, valid, z); break;
          default: floats_scalar(static_cast<const bf16_t*>(logits), i, p, c, valid, z); break;
        }
        for (int k = 0; k < valid; ++k) {
          g[k] = ((in >> k) & 1u) ? scale * loss_grad_pixel(z[k], (y >> k) & 1u, ca, cb, cc, pos_weight) : 0.0f;
        }
        switch (dtype) {
          case F32: store_floats(static_cast<float*>(grad) + i * p, c, valid, g); break;
          case F16: store_floats(static_cast<f16_t*>(grad) + i * p, c, valid, g); break;
          default: store_floats(static_cast<bf16_t*>(grad) + i * p, c, valid, g); break;
        }
      }
    }
  });
}

void mask_pack_cpu(const uint8_t* src, int64_t n, int64_t p, uint8_t* out, int64_t* invalid) {
  SA2VA_CHECK_ARG(src && out && invalid, "mask_pack_cpu: null pointer");
  detail::check_sizes("mask_pack_cpu", n, p, 1);
  const int64_t pitch = packed_pitch(p);
  std::vector<int64_t> bad_rows(n, 0);
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      uint32_t bad = 0;
      for (int64_t c = 0; c < pitch; ++c) {
        const int valid = static_cast<int>(p - 8 * c < 8 ? p - 8 * c : 8);
        out[i * pitch + c] = static_cast<uint8_t>(mask_bits_scalar(src, MASK_U8, i, p, c, valid, bad));
      }
      bad_rows[i] = bad;
    }
  });
  for (int64_t v : bad_rows) *invalid += v;
}

void mask_unpack_cpu(const uint8_t* bits, int64_t n, int64_t p, uint8_t* out) {
  SA2VA_CHECK_ARG(bits && out, "mask_unpack_cpu: null pointer");
  detail::check_sizes("mask_unpack_cpu", n, p, 1);
  const int64_t pitch = packed_pitch(p);
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (int64_t k = 0; k < p; ++k) out[i * p + k] = (bits[i * pitch + k / 8] >> (k % 8)) & 1u;
  });
}

}  // namespace sa2va
