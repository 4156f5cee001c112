// Runs the CUDA PPO loss (native/src/main/cpp/rl/ppo_loss.cu, compiled for the CPU emulation in cuda_emu/) against
// ppo_loss_cpu.cpp on random data: both GRPO schedules (old: rows counted, then a cooperative main pass; stash: the
// mask kept as bits across the grid barrier) and the CleanRL path (a preparatory launch, then the main launch), every
// aggregation, advantage normalisation on and off, reference log-probabilities present or absent, with and without
// a mask, rows whose mask is all zero, B = 1, L = 1, M not a multiple of 4 (scalar path), L not a multiple of 4 with
// M a multiple of 4 (vector groups across rows), misaligned arrays, and 1 or 3 SMs (grids of 2 or 6 blocks: a
// thread's groups span one or several words of the stash). Several calls in a row also check that the workspace
// counters come back to zero (the grid barrier and the last-block handshake would hang or mis-sum otherwise).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>
#include "rl/ppo_loss.h"
#include "emu_check.h"

using namespace sa2va;
using namespace emu_check;

namespace {

// Arrays with `off` floats of slack in front (off = 1: not 16-byte aligned, the scalar path).
struct Floats {
  std::vector<float> raw;
  size_t off;
  Floats(size_t n, size_t off_) : raw(n + off_, 0.0f), off(off_) {}
  float* data() { return raw.data() + off; }
  float& operator[](size_t i) { return raw[off + i]; }
};

bool close(double a, double b, double rel, double abs_tol) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::fabs(a - b) <= rel * std::max(std::fabs(a), std::fabs(b)) + abs_tol;
}

struct Case {
  bool grpo;       // one advantage per row, no values / entropy
  int agg;
  bool norm, ref, mask;
  int64_t b, l;
  size_t off;
  int zero_rows;   // rows with an all-zero mask (the first ones)
};

std::string describe(const Case& c, int schedule) {
  return std::string(c.grpo ? "grpo" : "cleanrl") + (c.grpo ? (schedule == PPO_GRPO_OLD ? "/old" : "/stash") : "") +
         " agg " + std::to_string(c.agg) + " norm " + std::to_string(c.norm) + " ref " + std::to_string(c.ref) +
         " mask " + std::to_string(c.mask) + " " + std::to_string(c.b) + "x" + std::to_string(c.l) + " off " +
         std::to_string(c.off) + " zero rows " + std::to_string(c.zero_rows) + " sms " + std::to_string(g_sms);
}

void run_case(const Case& c, int schedule, std::mt19937& rng) {
  const int64_t m = c.b * c.l;
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  Floats logp(m, c.off), old(m, c.off), ref(m, c.off), adv(c.grpo ? c.b : m, c.off), v(m, c.off), vo(m, c.off),
      ret(m, c.off), ent(m, c.off);
  for (int64_t i = 0; i < m; ++i) {
    logp[i] = nd(rng) - 2.0f;
    old[i] = logp[i] + 0.3f * nd(rng);  // ratios well outside [0.8, 1.2] too: clipped tokens on both sides
    ref[i] = logp[i] + 0.1f * nd(rng);
    v[i] = nd(rng);
    vo[i] = v[i] + 0.3f * nd(rng);
    ret[i] = nd(rng);
    ent[i] = ud(rng);
  }
  for (int64_t i = 0; i < (c.grpo ? c.b : m); ++i) adv[i] = nd(rng);
  // uint8 mask with bytes other than 1 (any non-zero byte is active), 4-byte aligned for the vector path
  std::vector<uint8_t> mraw(m + 4 * c.off);
  uint8_t* mask = mraw.data() + 4 * c.off;
  for (int64_t i = 0; i < m; ++i) mask[i] = ud(rng) < 0.8f ? static_cast<uint8_t>(1 + (i % 3) * 100) : 0;
  for (int64_t r = 0; r < std::min<int64_t>(c.zero_rows, c.b); ++r) std::memset(mask + r * c.l, 0, c.l);
  float params[PP_LEN] = {0};
  params[PP_EPS_LOW] = 0.2f;
  params[PP_EPS_HIGH] = c.grpo ? 0.28f : 0.2f;
  params[PP_EPS_VALUE] = c.grpo ? 0.0f : 0.2f;
  params[PP_VF_COEF] = c.grpo ? 0.0f : 0.5f;
  params[PP_ENT_COEF] = c.grpo ? 0.0f : 0.01f;
  params[PP_KL_COEF] = c.ref ? 0.04f : 0.0f;
  params[PP_NORM_ADV] = c.norm ? 1.0f : 0.0f;
  params[PP_ADV_EPS] = 1e-8f;
  params[PP_AGG] = static_cast<float>(c.agg);
  params[PP_AGG_CONST] = static_cast<float>(c.b * c.l);
  const float* r = c.ref ? ref.data() : nullptr;
  const uint8_t* mk = c.mask ? mask : nullptr;
  const float* vv = c.grpo ? nullptr : v.data();
  const float* vvo = c.grpo ? nullptr : vo.data();
  const float* rr = c.grpo ? nullptr : ret.data();
  const float* hh = c.grpo ? nullptr : ent.data();
  float sc[PS_LEN], sg[PS_LEN];
  Floats dc(m, c.off), dg(m, c.off), dvc(m, c.off), dvg(m, c.off), dhc(m, c.off), dhg(m, c.off);
  float* dv_c = c.grpo ? nullptr : dvc.data();
  float* dv_g = c.grpo ? nullptr : dvg.data();
  float* dh_c = c.grpo ? nullptr : dhc.data();
  float* dh_g = c.grpo ? nullptr : dhg.data();
  // outputs start as garbage: every element must be written
  for (int64_t i = 0; i < m; ++i) dg[i] = dvg[i] = dhg[i] = 7.0f;
  ppo_loss_cpu(logp.data(), old.data(), adv.data(), !c.grpo, mk, c.b, c.l, vv, vvo, rr, hh, r, params, sc, dc.data(),
               dv_c, dh_c);
  ppo_set_grpo_schedule(schedule);
  ppo_loss_cuda(logp.data(), old.data(), adv.data(), !c.grpo, mk, c.b, c.l, vv, vvo, rr, hh, r, params, sg, dg.data(),
                dv_g, dh_g, nullptr);
  ppo_set_grpo_schedule(PPO_GRPO_DEFAULT);
  const std::string ctx = describe(c, schedule);
  ++checks;
  for (int k = 0; k < PS_LEN; ++k) {
    if (!close(sc[k], sg[k], 2e-5, 1e-6)) {
      fail(ctx + " scalar " + std::to_string(k) + ": cpu " + std::to_string(sc[k]) + " emu " + std::to_string(sg[k]));
      return;
    }
  }
  auto compare = [&](const char* what, Floats& a, Floats& b) {
    ++checks;
    double scale = 0.0;
    for (int64_t i = 0; i < m; ++i) scale = std::max(scale, std::fabs(static_cast<double>(a[i])));
    for (int64_t i = 0; i < m; ++i) {
      if (!close(a[i], b[i], 2e-5, 1e-6 * scale)) {
        fail(ctx + " " + what + "[" + std::to_string(i) + "]: cpu " + std::to_string(a[i]) + " emu " +
             std::to_string(b[i]));
        return;
      }
    }
  };
  compare("dlogp", dc, dg);
  if (!c.grpo) {
    compare("dvalue", dvc, dvg);
    compare("dentropy", dhc, dhg);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = flag(argc, argv, "--quick");
  std::mt19937 rng(1234);
  // rows x tokens: B = 1, L = 1, M % 4 != 0 (scalar), L % 4 != 0 with M % 4 == 0, and rows long enough that a
  // thread of a 2-block grid has more than 16 groups (two steps of the count, several stash words)
  std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 1}, {1, 4}, {3, 5}, {4, 6}, {1, 100}, {7, 64}, {16, 260}};
  if (!quick) shapes.insert(shapes.end(), {{2, 1}, {5, 3}, {33, 128}, {64, 1040}});
  for (int sms : {1, 3}) {
    g_sms = sms;
    for (const auto& [b, l] : shapes) {
      // --quick (CI, 2 cores, a few seconds): the 3-SM grid only for the shapes with several groups per thread
      if (quick && sms == 3 && b * l < 100) continue;
      for (int agg : {AGG_TOKEN, AGG_SEQUENCE, AGG_CONSTANT}) {
        for (int variant = 0; variant < 4; ++variant) {
          const bool norm = variant & 1, ref = variant & 2;
          if (quick && (variant == 0 || (variant == 3) != (sms == 3))) continue;
          for (bool mask : {true, false}) {
            if (quick && !mask && (agg != AGG_TOKEN || variant != 1)) continue;
            for (size_t off : {size_t{0}, size_t{1}}) {
              if (quick && off == 1 && (agg != AGG_TOKEN || variant != 2 || !mask)) continue;
              const int zero_rows = b > 1 ? 2 : 0;
              for (int schedule : {PPO_GRPO_OLD, PPO_GRPO_STASH})
                run_case(Case{true, agg, norm, ref, mask, b, l, off, zero_rows}, schedule, rng);
              if (!quick || (agg == AGG_TOKEN && variant == 1 && off == 0))
                run_case(Case{false, agg, norm, ref, mask, b, l, off, zero_rows}, PPO_GRPO_DEFAULT, rng);
            }
          }
        }
      }
    }
    // a batch whose every mask byte is zero (T = 0: weights 1 / max(T, 1), all gradients zero)
    for (int schedule : {PPO_GRPO_OLD, PPO_GRPO_STASH})
      run_case(Case{true, AGG_TOKEN, false, true, true, 4, 64, 0, 4}, schedule, rng);
    // 5000 groups: a thread of the 2-block grid has 10 (a second step of the count, a second stash word)
    if (sms == 1)
      for (int schedule : {PPO_GRPO_OLD, PPO_GRPO_STASH})
        run_case(Case{true, AGG_TOKEN, true, true, true, 20, 1000, 0, 2}, schedule, rng);
  }
  return report();
}
