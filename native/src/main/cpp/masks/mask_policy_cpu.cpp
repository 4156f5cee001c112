// CPU implementation of the Bernoulli mask policy (see mask_policy.h); per-chunk math shared with CUDA
// (mask_pass.h).
#include "mask_policy.h"
#include <cmath>
#include "mask_pass.h"
#include "mask_stats.h"
#include "../common/dtype.h"
#include "../common/errors.h"
#include "../common/parallel.h"

namespace sa2va {

namespace {

void check_temperature(const char* fn, float t) {
  SA2VA_CHECK_ARG(t > 0.0f && std::isfinite(t), fn, ": temperature must be finite and > 0, got ", t);
}

void load_chunk(const void* z, int dtype, int64_t row, int64_t p, int64_t c, int valid, float* v) {
  switch (dtype) {
    case F32: floats_scalar(static_cast<const float*>(z), row, p, c, valid, v); break;
    case F16: floats_scalar(static_cast<const f16_t*>(z), row, p, c, valid, v); break;
    default: floats_scalar(static_cast<const bf16_t*>(z), row, p, c, valid, v); break;
  }
}

void store_chunk(void* out, int dtype, int64_t row, int64_t p, int64_t c, int valid, const float* g) {
  for (int k = 0; k < valid; ++k) {
    const int64_t i = row * p + 8 * c + k;
    switch (dtype) {
      case F32: static_cast<float*>(out)[i] = g[k]; break;
      case F16: static_cast<f16_t*>(out)[i] = from_float<f16_t>(g[k]); break;
      default: static_cast<bf16_t*>(out)[i] = from_float<bf16_t>(g[k]); break;
    }
  }
}

}  // namespace

void mask_sample_cpu(const void* logits, int dtype, int64_t n, int64_t p, float temperature, uint64_t seed,
                     uint64_t offset, int normalize, const void* target, int target_kind, const void* roi,
                     int roi_kind, int64_t group, const float* spec, uint8_t* bits, float* policy, double* stats,
                     float* scores) {
  const char* fn = "mask_sample_cpu";
  detail::check_sizes(fn, n, p, group);
  detail::check_pred(fn, logits, dtype, PRED_LOGITS, true);
  check_temperature(fn, temperature);
  detail::check_mask_input(fn, "target", target, target_kind, true);
  detail::check_mask_input(fn, "roi", roi, roi_kind, true);
  SA2VA_CHECK_ARG(bits != nullptr, fn, ": bits output is null");
  SA2VA_CHECK_ARG(target_kind != MASK_NONE || (stats == nullptr && scores == nullptr), fn,
                  ": scores need a target");
  MaskSpec s;
  for (int k = 0; k < SPEC_LEN; ++k) s.v[k] = spec ? spec[k] : 0.0f;
  const MaskOut o{stats, scores, nullptr, policy, nullptr, nullptr};
  const float inv_tau = 1.0f / temperature;
  const uint8_t* y8 = static_cast<const uint8_t*>(target);
  const uint8_t* r8 = static_cast<const uint8_t*>(roi);
  const int64_t pitch = packed_pitch(p);
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      MaskTotals t{0, 0, 0, 0, 0, 0, {0.0, 0.0, 0.0}};
      const int64_t trow = i / group;
      for (int64_t c = 0; c < pitch; ++c) {
        const int valid = static_cast<int>(p - 8 * c < 8 ? p - 8 * c : 8);
        float z[8], lp = 0.0f, en = 0.0f;
        load_chunk(logits, dtype, i, p, c, valid, z);
        uint32_t h = sample_chunk(z, valid, inv_tau, seed, offset, static_cast<uint64_t>(i * p + 8 * c), lp, en);
        bits[i * pitch + c] = static_cast<uint8_t>(h);
        t.f[0] += lp;
        t.f[1] += en;
        if (target_kind != MASK_NONE) {
          uint32_t bad = 0;
          uint32_t y = mask_bits_scalar(y8, target_kind, trow, p, c, valid, bad);
          uint32_t in = (1u << valid) - 1u;
          if (roi_kind != MASK_NONE) in &= mask_bits_scalar(r8, roi_kind, trow, p, c, valid, bad);
          ChunkCounts cc = count_bits(h, y, in);
          t.tp += cc.tp;
          t.fp += cc.fp;
          t.fn += cc.fn;
          t.cnt += cc.cnt;
          t.bad_target += bad;
        }
      }
      mask_finish(t, i, n, p, MODE_SAMPLE, false, normalize != 0, s, o);
    }
  });
}

void mask_logprob_cpu(const void* logits, int dtype, const uint8_t* bits, int64_t n, int64_t p, float temperature,
                      int normalize, float* policy, float* per_pixel) {
  const char* fn = "mask_logprob_cpu";
  detail::check_sizes(fn, n, p, 1);
  detail::check_pred(fn, logits, dtype, PRED_LOGITS, true);
  check_temperature(fn, temperature);
  SA2VA_CHECK_ARG(bits != nullptr, fn, ": bits is null");
  const MaskSpec s{};
  const MaskOut o{nullptr, nullptr, nullptr, policy, nullptr, nullptr};
  const float inv_tau = 1.0f / temperature;
  const int64_t pitch = packed_pitch(p);
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      MaskTotals t{0, 0, 0, 0, 0, 0, {0.0, 0.0, 0.0}};
      for (int64_t c = 0; c < pitch; ++c) {
        const int valid = static_cast<int>(p - 8 * c < 8 ? p - 8 * c : 8);
        float z[8], lp = 0.0f, en = 0.0f;
        load_chunk(logits, dtype, i, p, c, valid, z);
        uint32_t h = bits[i * pitch + c] & ((1u << valid) - 1u);
        eval_chunk(z, valid, h, inv_tau, lp, en, per_pixel ? per_pixel + i * p + 8 * c : nullptr);
        t.f[0] += lp;
        t.f[1] += en;
      }
      mask_finish(t, i, n, p, MODE_EVAL, false, normalize != 0, s, o);
    }
  });
}

void mask_policy_grad_cpu(const void* logits, int dtype, const uint8_t* bits, int64_t n, int64_t p, float temperature,
                          int normalize, const float* g, int g_per_pixel, float h, void* grad) {
  const char* fn = "mask_policy_grad_cpu";
  detail::check_sizes(fn, n, p, 1);
  detail::check_pred(fn, logits, dtype, PRED_LOGITS, true);
  check_temperature(fn, temperature);
  SA2VA_CHECK_ARG(bits && g && grad, fn, ": null bits, g or grad");
  const float inv_tau = 1.0f / temperature;
  const float norm = normalize ? 1.0f / static_cast<float>(p) : 1.0f;
  const int64_t pitch = packed_pitch(p);
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      for (int64_t c = 0; c < pitch; ++c) {
        const int valid = static_cast<int>(p - 8 * c < 8 ? p - 8 * c : 8);
        float z[8], out[8];
        load_chunk(logits, dtype, i, p, c, valid, z);
        const uint32_t m = bits[i * pitch + c];
        for (int k = 0; k < valid; ++k) {
          const float gi = (g_per_pixel ? g[i * p + 8 * c + k] : g[i]) * norm;
          out[k] = policy_grad_pixel(z[k], (m >> k) & 1u, inv_tau, gi, h * norm);
        }
        store_chunk(grad, dtype, i, p, c, valid, out);
      }
    }
  });
}

}  // namespace sa2va
