// Per-token PPO math shared by the CPU and CUDA implementations (see ppo_loss.h).
#pragma once
#include <cmath>
#include "../common/dtype.h"

namespace sa2va {

struct PpoConsts {
  float lo, hi;          // 1 - eps_low, 1 + eps_high
  float eps_v;           // value clip (<= 0: off)
  float vf, ent, beta;   // coefficients
};

// Per-token terms: the loss parts (un-weighted) and their derivatives.
struct PpoToken {
  float pg, dpg;         // policy loss and d/dlogp
  float kl, dkl;         // k3 to the reference and d/dlogp
  float v, dv;           // value loss (with the 0.5) and d/dV
  float approx_kl, old_kl;
  bool clipped, clip_active;
};

// torch's gradient rule for max(a, b): the larger side, halves on a tie.
SA2VA_HD float max_grad(float a, float b, float ga, float gb) { return a > b ? ga : (a < b ? gb : 0.5f * (ga + gb)); }

SA2VA_HD PpoToken ppo_token(float logp, float logp_old, float A, bool has_ref, float ref, bool has_v, float V,
                            float Vold, float R, const PpoConsts& c) {
  PpoToken t;
  const float logr = logp - logp_old;
  const float r = expf(logr);
  const float rc = fminf(fmaxf(r, c.lo), c.hi);
  const float pg1 = -A * r, pg2 = -A * rc;
  t.pg = fmaxf(pg1, pg2);
  const float g1 = -A * r;                                  // d pg1 / d logp (d ratio / d logp = ratio)
  const float g2 = (r >= c.lo && r <= c.hi) ? -A * r : 0.0f;  // d pg2 / d logp
  t.dpg = max_grad(pg1, pg2, g1, g2);
  t.approx_kl = (r - 1.0f) - logr;
  t.old_kl = -logr;
  t.clipped = r < c.lo || r > c.hi;
  t.clip_active = (r < c.lo && A < 0.0f) || (r > c.hi && A > 0.0f);
  if (has_ref) {
    const float d = ref - logp, e = expf(d);
    t.kl = e - d - 1.0f;
    t.dkl = 1.0f - e;
  } else {
    t.kl = 0.0f;
    t.dkl = 0.0f;
  }
  if (has_v) {
    const float du = V - R, vu = du * du;
    if (c.eps_v > 0.0f) {
      const float dd = V - Vold;
      const float vcl = Vold + fminf(fmaxf(dd, -c.eps_v), c.eps_v);
      const float dc = vcl - R, vc = dc * dc;
      t.v = 0.5f * fmaxf(vu, vc);
      t.dv = max_grad(vu, vc, du, (dd >= -c.eps_v && dd <= c.eps_v) ? dc : 0.0f);  // d(0.5 x^2) = x dx
    } else {
      t.v = 0.5f * vu;
      t.dv = du;
    }
  } else {
    t.v = 0.0f;
    t.dv = 0.0f;
  }
  return t;
}

// A token's terms added to the ten sums that become the scalars (ppo_loss.h order: policy, value, entropy and
// reference-KL losses weighted by w; approx KL, KL to the old policy, clipped, clip active, KL and entropy unweighted).
// add_policy_sums is the part without value and entropy (GRPO-shaped calls have neither).
template <typename Acc>
SA2VA_HD void add_policy_sums(Acc* s, const PpoToken& t, Acc w) {
  s[0] += w * t.pg;
  s[3] += w * t.kl;
  s[4] += t.approx_kl;
  s[5] += t.old_kl;
  s[6] += t.clipped;
  s[7] += t.clip_active;
  s[8] += t.kl;
}
template <typename Acc>
SA2VA_HD void add_token_sums(Acc* s, const PpoToken& t, Acc w, Acc h) {
  add_policy_sums(s, t, w);
  s[1] += w * t.v;
  s[2] += w * h;
  s[9] += h;
}

}  // namespace sa2va
