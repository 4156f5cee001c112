// Per-pixel math, per-sample totals and the per-sample epilogue shared by the CPU (mask_*_cpu.cpp) and CUDA
// (mask_*.cu) implementations of the mask passes: statistics / rewards / supervised losses (mask_stats.h) and
// Bernoulli mask sampling (mask_policy.h). Sharing the formulas keeps both devices on one definition; the
// tests check them against independent fp64 references written in Java.
//
// Work unit: a "chunk" of 8 consecutive pixels of one sample (chunk c = pixels 8c .. 8c+7), which is one byte
// of a bit-packed mask. Bit-packed rows hold ceil(P/8) bytes, pixel i at bit (i % 8) of byte i / 8 (LSB first,
// numpy.packbits(..., bitorder="little") per row); padding bits are zero.
#pragma once
#include <cstdint>
#include <cmath>
#include "../common/dtype.h"
#include "../common/philox.h"

// Chunk loops run to 8 with a guard so that nvcc unrolls them and keeps the 8 values in registers (a loop
// bound of `valid` would index the arrays dynamically and spill them to local memory).
#ifdef __CUDA_ARCH__
#define SA2VA_UNROLL _Pragma("unroll")
#else
#define SA2VA_UNROLL
#endif

namespace sa2va {

// How a mask-like input is stored. Predictions use all of them; targets and regions of interest the first four.
enum MaskKind : int {
  MASK_NONE = 0,        // absent
  MASK_U8 = 1,          // uint8 0/1; any other value is counted as invalid
  MASK_U8_NONZERO = 2,  // uint8, non-zero = foreground (the confusion() convention)
  MASK_PACKED = 3,      // 1 bit per pixel, rows of ceil(P/8) bytes
  PRED_LOGITS = 4,      // float logits z: hard = z > threshold, soft = sigmoid(z)
  PRED_PROBS = 5,       // float probabilities: hard = p > threshold, soft = p; outside [0, 1] is invalid
};

// Layout of the float spec array passed from Java (dev.sa2va.metrics.MaskMetrics / MaskLosses).
enum MaskSpecIndex : int {
  SPEC_W_DICE = 0, SPEC_W_RECALL, SPEC_W_PRECISION, SPEC_W_IOU, SPEC_W_TVERSKY,  // reward = sum of w * score
  SPEC_ALPHA, SPEC_BETA,          // Tversky index TP / (TP + alpha FP + beta FN)
  SPEC_EMPTY_NAN,                 // 0: an empty denominator scores 1; 1: NaN (MONAI / torchmetrics parity)
  SPEC_SOFT,                      // 1: scores from the soft sums (sum p*y, sum p, sum y) instead of counts
  SPEC_L_BCE, SPEC_L_DICE, SPEC_L_TVERSKY,  // supervised loss weights
  SPEC_POS_WEIGHT, SPEC_SMOOTH,   // BCE positive-class weight; smoothing of the soft Dice / Tversky ratios
  SPEC_L_ALPHA, SPEC_L_BETA, SPEC_L_GAMMA,  // Tversky loss weights and focal exponent: loss = (1 - TI)^gamma
  SPEC_LEN
};

// Rows of the per-sample outputs (metric-major: row k of a [K, N] tensor is contiguous, e.g. the rewards).
enum StatsRow : int { ST_TP = 0, ST_FP, ST_FN, ST_TN, ST_SPY, ST_SP, ST_SY, ST_BCE, ST_BAD_TARGET, ST_BAD_PRED, ST_ROWS };
enum ScoreRow : int { SC_REWARD = 0, SC_DICE, SC_RECALL, SC_PRECISION, SC_IOU, SC_TVERSKY, SC_ROWS };
enum PolicyRow : int { PO_LOGP = 0, PO_ENTROPY, PO_ROWS };
enum LossRow : int { LO_TOTAL = 0, LO_BCE, LO_DICE, LO_TVERSKY, LO_ROWS };
enum CoefRow : int { CO_A = 0, CO_B, CO_BCE, CO_ROWS };

struct MaskSpec { float v[SPEC_LEN]; };

// Pass modes: statistics of given predictions, Bernoulli sampling (+ scores of the samples), or the
// log-probability of given samples.
enum MaskMode : int { MODE_STATS = 0, MODE_SAMPLE = 1, MODE_EVAL = 2 };

// Per-sample totals. f[] = {sum p*y, sum p, sum bce} in MODE_STATS, {sum log pi, sum entropy, -} otherwise.
struct MaskTotals {
  int64_t tp, fp, fn, cnt;
  int64_t bad_target, bad_pred;  // invalid values in the target / ROI, in the prediction
  double f[3];
};

// MaskTotals in doubles (the counts exact below 2^53), as the CUDA passes sum them: the scores' epilogue takes these,
// so that the GPU does not convert its sums to 64-bit integers and back (0.3 us per reward call at 32x1M on the
// H200, benchmarks/RESULTS.md "Session 7").
struct FinishTotals {
  double tp, fp, fn, cnt;
  double bad_target, bad_pred;
  double f[3];
};
SA2VA_HD FinishTotals finish_totals(const MaskTotals& t) {
  return FinishTotals{static_cast<double>(t.tp), static_cast<double>(t.fp), static_cast<double>(t.fn),
                      static_cast<double>(t.cnt), static_cast<double>(t.bad_target), static_cast<double>(t.bad_pred),
                      {t.f[0], t.f[1], t.f[2]}};
}

// Where the epilogue writes; any pointer may be null.
struct MaskOut {
  double* stats;       // [ST_ROWS, N]
  float* scores;       // [SC_ROWS, N]
  int64_t* confusion;  // [N, 4] {TP, FP, FN, TN}
  float* policy;       // [PO_ROWS, N]
  float* loss;         // [LO_ROWS, N]
  float* coef;         // [CO_ROWS, N]: dL/dp_i = a + b*y_i, and the BCE weight per pixel
};

// ---- numerics --------------------------------------------------------------------------------------------
// The device uses the SFU intrinsics: the passes are memory-bound only if the per-pixel math stays cheap.
SA2VA_HD float fast_exp(float x) {
#ifdef __CUDA_ARCH__
  return __expf(x);
#else
  return std::exp(x);
#endif
}
SA2VA_HD float fast_log1p_small(float e) {  // log(1 + e) for e in [0, 1]
#ifdef __CUDA_ARCH__
  return __logf(1.0f + e);
#else
  return std::log1p(e);
#endif
}
SA2VA_HD float fast_div(float a, float b) {  // b in [1, 2] here
#ifdef __CUDA_ARCH__
  return __fdividef(a, b);
#else
  return a / b;
#endif
}

// sigmoid(x) and softplus(-|x|) = log(1 + exp(-|x|)) from one exponential, stable for any x.
struct SigmoidParts { float p; float l1p; };
SA2VA_HD SigmoidParts sigmoid_parts(float x) {
  float e = fast_exp(-fabsf(x));
  float r = fast_div(1.0f, 1.0f + e);
  SigmoidParts s;
  s.p = x >= 0.0f ? r : e * r;
  s.l1p = fast_log1p_small(e);
  return s;
}

// Bernoulli(p = sigmoid(x)): log pi(m) = -softplus(-x) - (1-m) x, entropy = softplus(-x) + (1-p) x,
// where softplus(-x) = max(-x, 0) + log(1 + exp(-|x|)).
SA2VA_HD float softplus_neg(float x, float l1p) { return fmaxf(-x, 0.0f) + l1p; }

// Uniform in [0, 1) for global pixel g: word g % 4 of the Philox block at counter index g / 4 (four pixels
// share one block; see common/philox.h for the counter layout).
SA2VA_HD float pixel_uniform(uint64_t seed, uint64_t offset, uint64_t g) {
  Philox4 w = philox_words(seed, offset, g >> 2);
  return philox_uniform(w.v[g & 3]);
}

SA2VA_HD int popc8(uint32_t x) {
#ifdef __CUDA_ARCH__
  return __popc(x);
#else
  return __builtin_popcount(x);
#endif
}

// Counts of one chunk from its prediction, target and region bits (bit k = pixel k of the chunk; `in` holds
// only valid pixels inside the region of interest).
struct ChunkCounts { uint32_t tp, fp, fn, cnt; };
SA2VA_HD ChunkCounts count_bits(uint32_t h, uint32_t y, uint32_t in) {
  ChunkCounts c;
  c.tp = popc8(h & y & in);
  c.fp = popc8(h & ~y & in);
  c.fn = popc8(~h & y & in);
  c.cnt = popc8(in);
  return c;
}

// One chunk of float predictions (logits or probabilities) in MODE_STATS: prediction bits, the soft sums
// over pixels inside the region and the invalid-value count. BCE is sum of pos_weight*y*softplus(-z) +
// (1-y)*softplus(z) (torch's BCEWithLogits with pos_weight).
struct FloatChunk { uint32_t hbits; uint32_t bad; float spy, sp, bce; };
SA2VA_HD FloatChunk stats_float_chunk(const float* v, int valid, bool logits, float thr, uint32_t y, uint32_t in,
                                      bool want_bce, float pos_weight) {
  FloatChunk r{0u, 0u, 0.0f, 0.0f, 0.0f};
  SA2VA_UNROLL
  for (int k = 0; k < 8; ++k) {
    if (k >= valid) break;
    float x = v[k];
    bool h = x > thr;
    r.hbits |= static_cast<uint32_t>(h) << k;
    float s;
    if (logits) {
      r.bad += x != x;
      SigmoidParts sp = sigmoid_parts(x);
      s = sp.p;
      if (want_bce && ((in >> k) & 1u)) {
        float spn = softplus_neg(x, sp.l1p);  // softplus(-x)
        float spp = spn + x;                  // softplus(x)
        r.bce += ((y >> k) & 1u) ? pos_weight * spn : spp;
      }
    } else {
      r.bad += !(x >= 0.0f && x <= 1.0f);
      s = x;
    }
    if ((in >> k) & 1u) {
      r.sp += s;
      if ((y >> k) & 1u) r.spy += s;
    }
  }
  return r;
}

// One chunk in MODE_SAMPLE: m ~ Bernoulli(sigmoid(z / tau)); returns the sample bits and adds log pi(m) and
// the entropy. g0 = global index (sample * P + pixel) of the chunk's first pixel.
SA2VA_HD uint32_t sample_chunk(const float* z, int valid, float inv_tau, uint64_t seed, uint64_t offset, uint64_t g0,
                               float& logp, float& ent) {
  uint32_t bits = 0;
  uint64_t q_cached = ~0ull;
  Philox4 w{{0u, 0u, 0u, 0u}};
  SA2VA_UNROLL
  for (int k = 0; k < 8; ++k) {
    if (k >= valid) break;
    uint64_t g = g0 + k;
    if ((g >> 2) != q_cached) { q_cached = g >> 2; w = philox_words(seed, offset, q_cached); }
    // a select, not w.v[g & 3]: a dynamic index would put the block in local memory on the device
    const uint32_t j = static_cast<uint32_t>(g & 3);
    const uint32_t word = j == 0 ? w.v[0] : j == 1 ? w.v[1] : j == 2 ? w.v[2] : w.v[3];
    float u = philox_uniform(word);
    float x = z[k] * inv_tau;
    SigmoidParts sp = sigmoid_parts(x);
    bool m = u < sp.p;
    bits |= static_cast<uint32_t>(m) << k;
    float spn = softplus_neg(x, sp.l1p);
    logp += -spn - (m ? 0.0f : x);
    ent += spn + (1.0f - sp.p) * x;
  }
  return bits;
}

// One chunk in MODE_EVAL: log pi and entropy of given sample bits; optionally the per-pixel log pi.
SA2VA_HD void eval_chunk(const float* z, int valid, uint32_t bits, float inv_tau, float& logp, float& ent,
                         float* per_pixel) {
  SA2VA_UNROLL
  for (int k = 0; k < 8; ++k) {
    if (k >= valid) break;
    float x = z[k] * inv_tau;
    SigmoidParts sp = sigmoid_parts(x);
    bool m = (bits >> k) & 1u;
    float spn = softplus_neg(x, sp.l1p);
    float lp = -spn - (m ? 0.0f : x);
    logp += lp;
    ent += spn + (1.0f - sp.p) * x;
    if (per_pixel) per_pixel[k] = lp;
  }
}

// ---- scalar loads (CPU, and the CUDA path for unaligned rows or P not a multiple of 8) ----------------------

SA2VA_HD int64_t packed_pitch(int64_t p) { return (p + 7) / 8; }

// Bits of chunk c of row `row` of a mask stored as `kind`; adds the count of uint8 values other than 0/1 to
// `bad` when kind is MASK_U8.
SA2VA_HD uint32_t mask_bits_scalar(const uint8_t* base, int kind, int64_t row, int64_t p, int64_t c, int valid,
                                   uint32_t& bad) {
  if (kind == MASK_PACKED) return base[row * packed_pitch(p) + c] & ((1u << valid) - 1u);
  const uint8_t* r = base + row * p + 8 * c;
  uint32_t bits = 0;
  for (int k = 0; k < valid; ++k) {
    uint32_t v = r[k];
    bits |= static_cast<uint32_t>(v != 0) << k;
    bad += (kind == MASK_U8) & (v > 1);
  }
  return bits;
}

template <typename T>
SA2VA_HD void floats_scalar(const T* base, int64_t row, int64_t p, int64_t c, int valid, float* v) {
  const T* r = base + row * p + 8 * c;
  SA2VA_UNROLL
  for (int k = 0; k < 8; ++k) {
    if (k >= valid) break;
    v[k] = to_float(r[k]);
  }
}

// ---- per-sample epilogue -----------------------------------------------------------------------------------

// num / den for the epilogues. On the device without the compiler's division: its slow path is a subroutine (a CALL
// in the SASS, taken only for extreme operands), and a mask-pass kernel that merely contains one ran 3.5 us slower
// at 32x1M on the H200 (2026-12-03, benchmarks/RESULTS.md "Session 6"), whichever division it was (f64, f32,
// __drcp_rn). Here: the hardware reciprocal estimate, two Newton steps and one correction of the quotient, which
// is within an ulp or so of the rounded quotient for every normal, finite den (the callers' denominators are 0,
// handled before, or at least ~1e-38: sums of counts and of float probabilities).
SA2VA_HD double div_nocall(double num, double den) {
#ifdef __CUDA_ARCH__
  double r;
  asm("rcp.approx.ftz.f64 %0, %1;" : "=d"(r) : "d"(den));
  r = fma(fma(-den, r, 1.0), r, r);
  r = fma(fma(-den, r, 1.0), r, r);
  const double q = num * r;
  return fma(fma(-den, q, num), r, q);
#else
  return num / den;
#endif
}

// num / den, or the empty-mask value when den == 0. Branch-free (both computed, one selected), so that the five
// ratios of a reward can run side by side.
SA2VA_HD float ratio_or_empty(double num, double den, bool empty_nan) {
  const float q = static_cast<float>(div_nocall(num, den));
  return den == 0.0 ? (empty_nan ? NAN : 1.0f) : q;
}

// The soft sums S = sum p*y, A = sum p and B = sum y of a sample's totals (the counts for binary predictions and
// outside MODE_STATS).
struct SoftSums { double spy, sp, sy; };
template <typename Totals>  // MaskTotals or FinishTotals
SA2VA_HD SoftSums soft_sums(const Totals& t, int mode, bool float_pred) {
  const double tp = static_cast<double>(t.tp), fp = static_cast<double>(t.fp), fn = static_cast<double>(t.fn);
  const bool soft = mode == MODE_STATS && float_pred;
  return SoftSums{soft ? t.f[0] : tp, soft ? t.f[1] : tp + fp, tp + fn};
}

// Score row `row` (SC_DICE .. SC_TVERSKY) from the spec's "TP" a, "FP" pfp and "FN" pfn (soft sums or counts).
SA2VA_HD float score_ratio(int row, double a, double pfp, double pfn, const MaskSpec& s, bool empty_nan) {
  double num = a, den;
  if (row == SC_DICE) {
    num = 2 * a;
    den = 2 * a + pfp + pfn;
  } else if (row == SC_RECALL) {
    den = a + pfn;
  } else if (row == SC_PRECISION) {
    den = a + pfp;
  } else if (row == SC_IOU) {
    den = a + pfp + pfn;
  } else {
    den = a + s.v[SPEC_ALPHA] * pfp + s.v[SPEC_BETA] * pfn;
  }
  return ratio_or_empty(num, den, empty_nan);
}

// The outputs of mask_finish_scores come in independent parts, each written by one call of
// mask_finish_scores_part: the 4 confusion entries, the ST_ROWS statistics rows, the PO_ROWS policy rows and the
// SC_ROWS score rows of sample n. The CPU runs the parts one after another; the reward kernel gives each part to
// one lane of a warp, so its per-sample epilogue takes as long as the longest part (the reward: five ratios that
// do not depend on each other) instead of all of them in a row (benchmarks/RESULTS.md, "Session 7").
constexpr int kFinishParts = 4 + ST_ROWS + PO_ROWS + SC_ROWS;

SA2VA_HD void mask_finish_scores_part(int part, const FinishTotals& t, int64_t n, int64_t N, int64_t P, int mode,
                                      bool float_pred, bool normalize_policy, const MaskSpec& s, const MaskOut& o) {
  // Every value first, by the same instructions whatever the part (on the GPU a warp's lanes then run one path up to
  // the store of their own part; see kFinishParts); values are picked by selects, not by indexing an array, which
  // would put the array in local memory.
  const bool bad = t.bad_target != 0.0 || t.bad_pred != 0.0;
  const double tp = t.tp, fp = t.fp, fn = t.fn, tn = t.cnt - t.tp - t.fp - t.fn;  // exact: integers below 2^53
  const SoftSums ss = soft_sums(t, mode, float_pred);
  const bool en = s.v[SPEC_EMPTY_NAN] != 0.0f;
  const bool soft = s.v[SPEC_SOFT] != 0.0f;
  const double a = soft ? ss.spy : tp;             // "TP"
  const double pfp = soft ? ss.sp - ss.spy : fp;   // "FP"
  const double pfn = soft ? ss.sy - ss.spy : fn;   // "FN"
  float sc[5];
  SA2VA_UNROLL
  for (int k = 0; k < 5; ++k) sc[k] = score_ratio(SC_DICE + k, a, pfp, pfn, s, en);
  float reward = 0.0f;
  SA2VA_UNROLL
  for (int k = 0; k < 5; ++k) {
    const float w = s.v[SPEC_W_DICE + k];
    reward = w != 0.0f ? reward + w * sc[k] : reward;  // unused metrics never leak a NaN into the reward
  }
  if (part < 4) {
    if (o.confusion) o.confusion[n * 4 + part] = static_cast<int64_t>(part == 0 ? tp : part == 1 ? fp : part == 2 ? fn : tn);
    return;
  }
  part -= 4;
  if (part < ST_ROWS) {
    if (o.stats) {
      const int k = part;
      const double v = k == ST_TP ? tp : k == ST_FP ? fp : k == ST_FN ? fn : k == ST_TN ? tn
                     : k == ST_SPY ? ss.spy : k == ST_SP ? ss.sp : k == ST_SY ? ss.sy
                     : k == ST_BCE ? (mode == MODE_STATS ? t.f[2] : 0.0)
                     : k == ST_BAD_TARGET ? t.bad_target : t.bad_pred;
      o.stats[k * N + n] = v;
    }
    return;
  }
  part -= ST_ROWS;
  if (part < PO_ROWS) {
    if (o.policy) {
      const double scale = normalize_policy ? div_nocall(1.0, static_cast<double>(P)) : 1.0;
      o.policy[part * N + n] = static_cast<float>((part == PO_LOGP ? t.f[0] : t.f[1]) * scale);
    }
    return;
  }
  part -= PO_ROWS;
  if (!o.scores) return;
  const float v = part == SC_REWARD ? reward : part == SC_DICE ? sc[0] : part == SC_RECALL ? sc[1]
                : part == SC_PRECISION ? sc[2] : part == SC_IOU ? sc[3] : sc[4];
  o.scores[part * N + n] = bad ? NAN : v;
}

// mask_finish without the supervised losses (o.loss, o.coef ignored): the epilogue of the reward kernel, which
// keeps the losses' double-precision code (pow) out of its instructions.
SA2VA_HD void mask_finish_scores(const MaskTotals& t, int64_t n, int64_t N, int64_t P, int mode, bool float_pred,
                                 bool normalize_policy, const MaskSpec& s, const MaskOut& o) {
  const FinishTotals ft = finish_totals(t);
  for (int part = 0; part < kFinishParts; ++part)
    mask_finish_scores_part(part, ft, n, N, P, mode, float_pred, normalize_policy, s, o);
}

// The supervised losses and their gradient coefficients of mask_finish (o.loss, o.coef).
SA2VA_HD void mask_finish_losses(const MaskTotals& t, int64_t n, int64_t N, int mode, bool float_pred,
                                 const MaskSpec& s, const MaskOut& o) {
  const SoftSums ss = soft_sums(t, mode, float_pred);
  const double spy = ss.spy, sp = ss.sp, sy = ss.sy;
  const bool bad = t.bad_target != 0 || t.bad_pred != 0;
  if (o.loss || o.coef) {
    // Region losses on the soft sums S = sum p*y, A = sum p, B = sum y; their gradient w.r.t. p_i is
    // a + b*y_i (derivation in mask_stats.h).
    const double sm = s.v[SPEC_SMOOTH];
    const double wb = s.v[SPEC_L_BCE], wd = s.v[SPEC_L_DICE], wt = s.v[SPEC_L_TVERSKY];
    const double al = s.v[SPEC_L_ALPHA], be = s.v[SPEC_L_BETA], ga = s.v[SPEC_L_GAMMA];
    const double cnt = static_cast<double>(t.cnt);
    const double bce = cnt > 0 ? t.f[2] / cnt : 0.0;
    const double dden = sp + sy + sm;
    const double dice = dden > 0 ? (2 * spy + sm) / dden : 1.0;
    const double tden = (1 - al - be) * spy + al * sp + be * sy + sm;
    const double ti = tden > 0 ? (spy + sm) / tden : 1.0;
    const double om = 1.0 - ti > 0 ? 1.0 - ti : 0.0;
    const double tl = pow(om, ga);
    double a = 0, b = 0;
    if (dden > 0) { a += wd * (2 * spy + sm) / (dden * dden); b += wd * (-2.0 / dden); }
    if (tden > 0 && om > 0) {
      const double k = ga * pow(om, ga - 1);  // d(1-TI)^g / dTI = -k
      a += wt * k * al * (spy + sm) / (tden * tden);
      b += -wt * k * (1.0 / tden - (1 - al - be) * (spy + sm) / (tden * tden));
    }
    const double total = wb * bce + wd * (1 - dice) + wt * tl;
    if (o.loss) {
      o.loss[LO_TOTAL * N + n] = bad ? NAN : static_cast<float>(total);
      o.loss[LO_BCE * N + n] = bad ? NAN : static_cast<float>(bce);
      o.loss[LO_DICE * N + n] = bad ? NAN : static_cast<float>(1 - dice);
      o.loss[LO_TVERSKY * N + n] = bad ? NAN : static_cast<float>(tl);
    }
    if (o.coef) {
      o.coef[CO_A * N + n] = bad ? NAN : static_cast<float>(a);
      o.coef[CO_B * N + n] = bad ? NAN : static_cast<float>(b);
      o.coef[CO_BCE * N + n] = bad ? NAN : static_cast<float>(cnt > 0 ? wb / cnt : 0.0);
    }
  }
}

// Writes everything requested for sample n from its totals. float_pred: the soft sums come from float
// predictions (else they equal the counts). Samples with invalid inputs get NaN scores and losses, so a bad
// target can never pass as a plausible reward.
SA2VA_HD void mask_finish(const MaskTotals& t, int64_t n, int64_t N, int64_t P, int mode, bool float_pred,
                          bool normalize_policy, const MaskSpec& s, const MaskOut& o) {
  mask_finish_scores(t, n, N, P, mode, float_pred, normalize_policy, s, o);
  mask_finish_losses(t, n, N, mode, float_pred, s, o);
}

// Gradient of the supervised loss w.r.t. one logit inside the region: (a + b*y) * p(1-p) + c * dBCE/dz with
// dBCE/dz = pos_weight*y*(p-1) + (1-y)*p.
SA2VA_HD float loss_grad_pixel(float z, bool y, float a, float b, float c, float pos_weight) {
  SigmoidParts sp = sigmoid_parts(z);
  float p = sp.p;
  float region = (a + (y ? b : 0.0f)) * p * (1.0f - p);
  float dbce = y ? pos_weight * (p - 1.0f) : p;
  return region + c * dbce;
}

// Gradient of F = sum_i g_i log pi(m_i) + h sum_i H_i w.r.t. z_i, with x = z / tau, p = sigmoid(x):
// dF/dz = (g (m - p) - h x p (1-p)) / tau.
SA2VA_HD float policy_grad_pixel(float z, bool m, float inv_tau, float g, float h) {
  float x = z * inv_tau;
  SigmoidParts sp = sigmoid_parts(x);
  float p = sp.p;
  return (g * ((m ? 1.0f : 0.0f) - p) - h * x * p * (1.0f - p)) * inv_tau;
}

}  // namespace sa2va
