// Runs the CUDA mask pass (native/src/main/cpp/masks/mask_pass.cuh through mask_stats.cu / mask_policy.cu, compiled
// for the CPU emulation in cuda_emu/) against the C++ CPU implementation on random data: every prediction kind and
// dtype, uint8 / packed targets and regions, groups, P a multiple of 8 or not, rows starting one element (or one
// chunk) off alignment, and several SM counts so that the blocks per sample and the batches of the vector path
// split the chunks in different ways (batches with a partial tail, one chunk per thread, several batches). Built
// and run by run-emu-tests.sh with AddressSanitizer: a load past a row or a buffer aborts.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>
#include "common/dtype.h"
#include "masks/mask_pass.h"
#include "masks/mask_policy.h"
#include "masks/mask_stats.h"
#include "emu_check.h"

using namespace sa2va;
using namespace emu_check;

namespace {

bool close(double a, double b, double tol) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::fabs(a - b) <= tol * std::max(1.0, std::fabs(a));
}

// A buffer with `off` bytes of slack in front: data() + off is the (possibly misaligned) start of the array.
struct Bytes {
  std::vector<uint8_t> raw;
  size_t off;
  Bytes(size_t n, size_t off_) : raw(n + off_), off(off_) {}
  uint8_t* data() { return raw.data() + off; }
};

Bytes logits_of(int dtype, int64_t m, size_t off_elems, std::mt19937& rng, bool nan) {
  const size_t es = dtype == F32 ? 4 : 2;
  // exactly m elements after the offset: ASan sees any read past the last row
  Bytes b(m * es, off_elems * es);
  std::normal_distribution<float> d(0.0f, 2.0f);
  for (int64_t i = 0; i < m; ++i) {
    float v = d(rng);
    if (nan && (i == m / 3 || i == m / 3 + 9 || i == (2 * m) / 3)) v = NAN;  // NaNs in neighbouring chunks too
    if (dtype == F32) std::memcpy(b.data() + 4 * i, &v, 4);
    else {
      uint16_t h = dtype == F16 ? float_to_f16(v) : float_to_bf16(v);
      std::memcpy(b.data() + 2 * i, &h, 2);
    }
  }
  return b;
}

Bytes mask_of(int kind, int64_t rows, int64_t p, double p1, size_t off, std::mt19937& rng, bool invalid) {
  std::bernoulli_distribution d(p1);
  if (kind == MASK_PACKED) {
    const int64_t pitch = (p + 7) / 8;
    Bytes b(rows * pitch, off);
    std::memset(b.data(), 0, rows * pitch);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < p; ++i)
        if (d(rng)) b.data()[r * pitch + i / 8] |= static_cast<uint8_t>(1u << (i % 8));
    return b;
  }
  Bytes b(rows * p, off);
  // non-zero masks get bytes 1..255, so that chunks with bytes above 1 (as in 0/255 masks) take the slow decode
  const bool any_byte = kind == MASK_U8_NONZERO;
  for (int64_t i = 0; i < rows * p; ++i) b.data()[i] = d(rng) ? (any_byte ? static_cast<uint8_t>(1 + i % 255) : 1) : 0;
  if (invalid && rows * p > 5) b.data()[rows * p - 5] = 2;
  return b;
}

void compare_scores(const std::string& ctx, int64_t n, const std::vector<double>& sc, const std::vector<double>& sg,
                    const std::vector<float>& fc, const std::vector<float>& fg, const std::vector<int64_t>& cc,
                    const std::vector<int64_t>& cg) {
  ++checks;
  for (int k = 0; k < ST_ROWS; ++k) {
    const bool exact = k != ST_SPY && k != ST_SP && k != ST_BCE;
    for (int64_t i = 0; i < n; ++i) {
      double a = sc[k * n + i], b = sg[k * n + i];
      if (exact ? !(a == b || (std::isnan(a) && std::isnan(b))) : !close(a, b, 1e-5)) {
        fail(ctx + " stats row " + std::to_string(k) + " sample " + std::to_string(i) + ": cpu " + std::to_string(a) +
             " emu " + std::to_string(b));
        return;
      }
    }
  }
  for (size_t i = 0; i < fc.size(); ++i) {
    if (!close(fc[i], fg[i], 1e-5)) {
      fail(ctx + " score " + std::to_string(i) + ": cpu " + std::to_string(fc[i]) + " emu " + std::to_string(fg[i]));
      return;
    }
  }
  if (cc != cg) fail(ctx + " confusion");
}

void scores_case(int pred_kind, int dtype, int tkind, int rkind, int64_t n, int64_t p, int64_t g, size_t poff,
                 size_t toff, bool soft, std::mt19937& rng) {
  const int64_t m = n * p, rows = n / g;
  const bool float_pred = pred_kind == PRED_LOGITS || pred_kind == PRED_PROBS;
  Bytes pred = float_pred ? logits_of(dtype, m, poff, rng, pred_kind == PRED_LOGITS)
                          : mask_of(pred_kind, n, p, 0.4, poff, rng, false);
  if (pred_kind == PRED_PROBS) {  // probabilities: squash the logits, keep one out of range
    for (int64_t i = 0; i < m; ++i) {
      float v;
      if (dtype == F32) std::memcpy(&v, pred.data() + 4 * i, 4);
      else { uint16_t h; std::memcpy(&h, pred.data() + 2 * i, 2); v = dtype == F16 ? f16_to_float(h) : bf16_to_float(h); }
      v = i == m / 2 ? 1.5f : 1.0f / (1.0f + std::exp(-v));
      if (dtype == F32) std::memcpy(pred.data() + 4 * i, &v, 4);
      else { uint16_t h = dtype == F16 ? float_to_f16(v) : float_to_bf16(v); std::memcpy(pred.data() + 2 * i, &h, 2); }
    }
  }
  Bytes tgt = mask_of(tkind, rows, p, 0.3, toff, rng, tkind == MASK_U8);
  Bytes roi = mask_of(rkind == MASK_NONE ? MASK_U8_NONZERO : rkind, rows, p, 0.9, toff, rng, false);
  float spec[SPEC_LEN] = {0};
  spec[SPEC_W_DICE] = 1.0f;
  spec[SPEC_W_RECALL] = 0.5f;
  spec[SPEC_ALPHA] = 0.3f;
  spec[SPEC_BETA] = 0.7f;
  spec[SPEC_SOFT] = soft ? 1.0f : 0.0f;
  const float thr = pred_kind == PRED_PROBS ? 0.5f : 0.25f;
  const void* r = rkind == MASK_NONE ? nullptr : roi.data();
  std::vector<double> sc(ST_ROWS * n), sg(ST_ROWS * n);
  std::vector<float> fc(SC_ROWS * n), fg(SC_ROWS * n);
  std::vector<int64_t> cc(4 * n), cg(4 * n);
  mask_scores_cpu(pred.data(), dtype, pred_kind, tgt.data(), tkind, r, rkind, n, p, g, thr, spec, sc.data(), fc.data(),
                  cc.data(), nullptr, nullptr);
  mask_scores_cuda(pred.data(), dtype, pred_kind, tgt.data(), tkind, r, rkind, n, p, g, thr, spec, sg.data(), fg.data(),
                   cg.data(), nullptr, nullptr, nullptr);
  const std::string ctx = "scores kind " + std::to_string(pred_kind) + " dtype " + std::to_string(dtype) + " target " +
                          std::to_string(tkind) + " roi " + std::to_string(rkind) + " " + std::to_string(n) + "x" +
                          std::to_string(p) + " g " + std::to_string(g) + " offsets " + std::to_string(poff) + "/" +
                          std::to_string(toff) + " soft " + std::to_string(soft) + " sms " + std::to_string(g_sms);
  compare_scores(ctx, n, sc, sg, fc, fg, cc, cg);
  if (pred_kind == PRED_LOGITS && tkind == MASK_U8 && rkind == MASK_NONE && g == 1) {
    // counts only (confusion()): the vector path without the sigmoid
    std::vector<int64_t> oc(4 * n), og(4 * n);
    mask_stats_cpu(pred.data(), dtype, tgt.data(), n, p, thr, oc.data());
    mask_stats_cuda(pred.data(), dtype, tgt.data(), n, p, thr, og.data(), nullptr);
    ++checks;
    if (oc != og) fail(ctx + " confusion only");
  }
}

void sample_case(int dtype, int tkind, int64_t n, int64_t p, size_t poff, std::mt19937& rng) {
  const int64_t m = n * p, pitch = (p + 7) / 8;
  Bytes z = logits_of(dtype, m, poff, rng, false);
  Bytes tgt = mask_of(tkind, n, p, 0.3, 0, rng, false);
  float spec[SPEC_LEN] = {0};
  spec[SPEC_W_DICE] = 1.0f;
  std::vector<uint8_t> bc(n * pitch), bg(n * pitch);
  std::vector<float> pc(PO_ROWS * n), pg(PO_ROWS * n), fc(SC_ROWS * n), fg(SC_ROWS * n);
  std::vector<double> sc(ST_ROWS * n), sg(ST_ROWS * n);
  mask_sample_cpu(z.data(), dtype, n, p, 0.8f, 7, 11, 1, tgt.data(), tkind, nullptr, MASK_NONE, 1, spec, bc.data(),
                  pc.data(), sc.data(), fc.data());
  mask_sample_cuda(z.data(), dtype, n, p, 0.8f, 7, 11, 1, tgt.data(), tkind, nullptr, MASK_NONE, 1, spec, bg.data(),
                   pg.data(), sg.data(), fg.data(), nullptr);
  const std::string ctx = "sample dtype " + std::to_string(dtype) + " target " + std::to_string(tkind) + " " +
                          std::to_string(n) + "x" + std::to_string(p) + " offset " + std::to_string(poff) + " sms " +
                          std::to_string(g_sms);
  ++checks;
  if (bc != bg) {
    fail(ctx + " sampled bits");
    return;
  }
  for (size_t i = 0; i < pc.size(); ++i)
    if (!close(pc[i], pg[i], 1e-5)) { fail(ctx + " policy " + std::to_string(i)); return; }
  compare_scores(ctx, n, sc, sg, fc, fg, {}, {});
  std::vector<float> lc(PO_ROWS * n), lg(PO_ROWS * n), ppc(m), ppg(m);
  mask_logprob_cpu(z.data(), dtype, bc.data(), n, p, 0.8f, 0, lc.data(), ppc.data());
  mask_logprob_cuda(z.data(), dtype, bc.data(), n, p, 0.8f, 0, lg.data(), ppg.data(), nullptr);
  ++checks;
  for (size_t i = 0; i < lc.size(); ++i)
    if (!close(lc[i], lg[i], 1e-5)) { fail(ctx + " logprob " + std::to_string(i)); return; }
  for (int64_t i = 0; i < m; ++i)
    if (!close(ppc[i], ppg[i], 1e-5)) { fail(ctx + " per-pixel logprob " + std::to_string(i)); return; }
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = flag(argc, argv, "--quick");
  std::mt19937 rng(404);
  // (n, p): P % 8 == 0 with 1, 3, 4, 5 and many chunks per thread, P not a multiple of 8, N = 1, one pixel
  const int64_t shapes[][2] = {{1, 1}, {3, 8}, {2, 40}, {5, 8 * 97}, {4, 8 * 1030}, {2, 8 * 4100 + 8}, {3, 13},
                               {1, 4099}, {64, 24}, {4, 8 * 600 + 3}};
  // 1 SM: few blocks per sample, so threads take several batches; 5 SMs: batches with partial tails
  for (int sms : {1, 5}) {
    g_sms = sms;
    for (const auto& sh : shapes) {
      const int64_t n = sh[0], p = sh[1];
      if (quick && p > 5000 && sms != 1) continue;
      for (int dtype : {BF16, F32, F16}) {
        if (dtype == F16 && sms != 1) continue;
        for (size_t poff : {size_t(0), size_t(1)}) {
          for (bool soft : {false, true}) scores_case(PRED_LOGITS, dtype, MASK_U8, MASK_NONE, n, p, 1, poff, 0, soft, rng);
        }
        scores_case(PRED_LOGITS, dtype, MASK_PACKED, MASK_U8_NONZERO, n, p, 1, 8, 8, false, rng);  // a whole chunk in
        scores_case(PRED_LOGITS, dtype, MASK_U8_NONZERO, MASK_NONE, n, p, 1, 0, 0, true, rng);  // bytes 1..255
        scores_case(PRED_PROBS, dtype, MASK_U8, MASK_PACKED, n, p, 1, 0, 0, true, rng);
        scores_case(PRED_LOGITS, dtype, MASK_U8, MASK_NONE, n, p, 1, 0, 1, true, rng);  // target misaligned
        // packed targets without a region (their own loop of full batches), with groups
        scores_case(PRED_LOGITS, dtype, MASK_PACKED, MASK_NONE, n, p, n % 2 == 0 ? 2 : 1, 0, 0, true, rng);
        if (n % 2 == 0) scores_case(PRED_LOGITS, dtype, MASK_U8, MASK_NONE, n, p, 2, 0, 0, false, rng);
        if (n % 2 == 0) scores_case(PRED_LOGITS, dtype, MASK_PACKED, MASK_PACKED, n, p, 2, 0, 0, true, rng);
        sample_case(dtype, dtype == F32 ? MASK_PACKED : MASK_U8, n, p, dtype == F16 ? 1 : 0, rng);
      }
      scores_case(MASK_U8, U8, MASK_U8, MASK_NONE, n, p, 1, 0, 0, false, rng);
      scores_case(MASK_PACKED, U8, MASK_PACKED, MASK_U8, n, p, 1, 3, 0, false, rng);
    }
  }
  // several waves of blocks (mask_set_waves, for measurements): more blocks per sample, the same totals
  sa2va::mask_set_waves(3);
  g_sms = 2;
  for (const auto& sh : shapes) {
    const int64_t n = sh[0], p = sh[1];
    for (bool soft : {false, true}) scores_case(PRED_LOGITS, BF16, MASK_U8, MASK_NONE, n, p, 1, 0, 0, soft, rng);
    scores_case(PRED_LOGITS, F32, MASK_PACKED, MASK_U8, n, p, 1, 0, 0, true, rng);
    sample_case(BF16, MASK_U8, n, p, 0, rng);
  }
  sa2va::mask_set_waves(0);
  return report();
}
