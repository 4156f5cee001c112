// Runs the CUDA GAE kernels (native/src/main/cpp/rl/gae.cu, compiled for the CPU emulation in cuda_emu/) against
// the C++ CPU implementation (gae_cpu.cpp) on random rollouts: every schedule (auto, per environment, two-sweep
// chunked, register scan, warp scan), with and without the fused normalisation (a cooperative launch with a grid
// barrier for the scans, or the two-launch fallback when the grid would not be resident), uint8 and float flags,
// terminations, truncations whose other trunc_values entries are NaN (they must not leak), bootstrap values or
// none, returns or none, and shapes at the edges of the schedules: T = 1, N = 1, T not a power of two, every step
// done, T = 2048 x N = 16 (the shape the warp scan is for), T = 4096 x N = 3. Several SM counts change the
// schedule's choices (blocks per environment group, the resident-grid check of the normalisation).
// Built and run by run-emu-tests.sh with AddressSanitizer: any read past a [T, N] buffer aborts.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>
#include "common/sa2va_api.h"
#include "rl/gae.h"
#include "emu_check.h"

using namespace sa2va;
using namespace emu_check;

namespace {

constexpr int kSchedules = 5;  // algo 0 (auto) to 4 (warp scan)

struct Case {
  int64_t t, n;
  float gamma, lambda;
  double p_term, p_trunc;  // probabilities per step; p_trunc < 0: no truncated tensor at all
  bool f32_flags, boot, ret, normalize;
};

std::string name_of(const Case& c, int algo, int sms) {
  char b[200];
  std::snprintf(b, sizeof b, "T=%lld N=%lld g=%.2f l=%.2f term=%.2f trunc=%.2f %s%s%s%s algo=%d sms=%d",
                static_cast<long long>(c.t), static_cast<long long>(c.n), c.gamma, c.lambda, c.p_term, c.p_trunc,
                c.f32_flags ? "f32" : "u8", c.boot ? " boot" : "", c.ret ? " ret" : "", c.normalize ? " norm" : "", algo,
                sms);
  return b;
}

struct Rollout {
  std::vector<float> r, v, tv, boot;
  std::vector<uint8_t> term8, trunc8;
  std::vector<float> termf, truncf;
};

Rollout make(const Case& c, std::mt19937& rng) {
  const size_t m = static_cast<size_t>(c.t * c.n);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Rollout ro;
  ro.r.resize(m);
  ro.v.resize(m);
  for (size_t i = 0; i < m; ++i) { ro.r[i] = nd(rng); ro.v[i] = nd(rng); }
  ro.term8.resize(m);
  ro.termf.resize(m);
  for (size_t i = 0; i < m; ++i) {
    const bool d = u(rng) < c.p_term;
    ro.term8[i] = d ? (i % 3 == 0 ? 2 : 1) : 0;  // any non-zero byte is true
    ro.termf[i] = d ? 1.0f : 0.0f;
  }
  if (c.p_trunc >= 0) {
    ro.trunc8.resize(m);
    ro.truncf.resize(m);
    ro.tv.resize(m);
    for (size_t i = 0; i < m; ++i) {
      const bool d = u(rng) < c.p_trunc;
      ro.trunc8[i] = d;
      ro.truncf[i] = d ? -1.0f : 0.0f;
      ro.tv[i] = d ? nd(rng) : NAN;
    }
  }
  if (c.boot) {
    ro.boot.resize(static_cast<size_t>(c.n));
    for (auto& x : ro.boot) x = nd(rng);
  }
  return ro;
}

struct Out {
  std::vector<float> adv, ret, stats;
};

template <typename F>
Out run(const Case& c, Rollout& ro, F&& gae) {
  const size_t m = static_cast<size_t>(c.t * c.n);
  Out o;
  o.adv.assign(m, NAN);  // unwritten entries show as NaN
  if (c.ret) o.ret.assign(m, NAN);
  if (c.normalize) o.stats.assign(2, NAN);
  const bool tr = c.p_trunc >= 0;
  const void* term = c.f32_flags ? static_cast<const void*>(ro.termf.data()) : ro.term8.data();
  const void* trunc = !tr ? nullptr : c.f32_flags ? static_cast<const void*>(ro.truncf.data()) : ro.trunc8.data();
  const int dt = c.f32_flags ? F32 : U8;
  gae(ro.r.data(), ro.v.data(), term, dt, trunc, dt, tr ? ro.tv.data() : nullptr, c.boot ? ro.boot.data() : nullptr,
      c.ret ? o.ret.data() : nullptr, c.normalize ? o.stats.data() : nullptr, o.adv.data());
  return o;
}

// fp32 against fp32 in another order: a scan adds the same terms as the reverse loop, grouped differently, so
// the difference is a few ulps of the largest partial sum along the environment (not of the entry itself:
// with gamma = lambda = 1 an advantage can be a small difference of large sums).
double g_worst = 0.0;  // over all checks, for the summary (how close to the tolerance the kernels come)

void compare(const std::string& what, const std::vector<float>& got, const std::vector<float>& want, double scale) {
  ++checks;
  double worst = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double e = std::fabs(static_cast<double>(got[i]) - want[i]) / (scale + std::fabs(want[i]));
    if (!(e <= worst)) { worst = std::isnan(e) ? INFINITY : e; at = i; }
  }
  g_worst = std::max(g_worst, worst);
  if (worst > 2e-5) {
    char b[160];
    std::snprintf(b, sizeof b, ": worst relative error %.3g at %zu (got %.9g, want %.9g)", worst, at,
                  static_cast<double>(got[at]), static_cast<double>(want[at]));
    fail(what + b);
  }
}

void run_case(const Case& c, std::mt19937& rng, const std::vector<int>& sm_counts, bool quick) {
  Rollout ro = make(c, rng);
  const Out want = run(c, ro, [&](const float* r, const float* v, const void* te, int dt, const void* trn, int dt2,
                                  const float* tv, const float* bt, float* ret, float* st, float* adv) {
    gae_cpu(r, v, te, dt, trn, dt2, tv, bt, c.t, c.n, c.gamma, c.lambda, 1e-8f, adv, ret, st);
  });
  // The scale of the error: the largest |A| (normalised or not: normalising scales the errors with the values).
  double scale = 1.0;
  for (float a : want.adv) scale = std::max(scale, static_cast<double>(std::fabs(a)));
  for (int sms : sm_counts) {
    g_sms = sms;
    for (int algo = 0; algo < kSchedules; ++algo) {
      // quick: past 4096 elements, not per environment (the slowest emulation, no scan) nor auto (one of the
      // others: main checks which)
      if (quick && (algo == 1 || algo == 0) && c.t * c.n > 4096) continue;
      const std::string what = name_of(c, algo, sms);
      Out got;
      try {
        got = run(c, ro, [&](const float* r, const float* v, const void* te, int dt, const void* trn, int dt2,
                             const float* tv, const float* bt, float* ret, float* st, float* adv) {
          gae_cuda(r, v, te, dt, trn, dt2, tv, bt, c.t, c.n, c.gamma, c.lambda, 1e-8f, adv, ret, st, algo, nullptr);
        });
      } catch (const std::exception& e) {
        ++checks;
        fail(what + ": threw " + e.what());
        continue;
      }
      compare(what + " advantages", got.adv, want.adv, scale);
      if (c.ret) compare(what + " returns", got.ret, want.ret, scale);
      if (c.normalize) {
        // mean and std of the same advantages summed in another order (in double on both sides)
        compare(what + " norm_stats", got.stats, want.stats, 1e-3 * want.stats[1]);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = flag(argc, argv, "--quick");
  std::mt19937 rng(20240611);
  const float G = 0.99f, L = 0.95f;
  std::vector<Case> cases = {
      // T, N, gamma, lambda, p_term, p_trunc, f32 flags, boot, ret, normalize
      {1, 1, G, L, 0.0, -1, false, true, true, false},
      {1, 37, G, L, 0.3, 0.3, false, true, true, true},
      {37, 1, G, L, 0.05, -1, true, false, true, true},
      {100, 5, G, L, 1.0, -1, false, true, true, false},      // every step terminates: A = delta = r - V
      {100, 5, G, L, 0.0, 1.0, false, true, true, true},      // every step truncated: A = r + gamma tv - V
      {300, 7, G, L, 0.02, 0.05, false, true, true, false},   // truncations with bootstrap values
      {300, 7, 1.0f, 1.0f, 0.0, -1, true, true, false, false},  // no decay: the longest chains
      {513, 9, 0.0f, 0.0f, 0.1, 0.1, false, false, true, false},
      {2048, 16, G, L, 0.01, -1, false, true, true, false},   // SB3's default shape (the warp scan's target)
      {2048, 16, G, L, 0.01, 0.01, true, true, true, true},
      {4096, 3, G, L, 0.005, 0.005, false, true, true, false},
      {4096, 3, G, L, 0.0, -1, false, false, false, true},
      {64, 300, G, L, 0.02, 0.02, false, true, true, true},   // many environments: several per block
  };
  if (!quick) {
    cases.push_back({1000, 33, G, L, 0.01, 0.01, true, true, true, true});
    cases.push_back({8193, 2, G, L, 0.001, -1, false, true, true, true});  // past the warp scan's longest T
    cases.push_back({777, 1, 1.0f, 1.0f, 0.0, 0.0, false, true, true, true});
  }
  // Which schedule auto takes (the chunk count tells them apart here): the warp scan for long T and few
  // environments, the register scan otherwise.
  g_sms = 132;
  const int warp_2048 = gae_cuda_chunks(2048, 16, 4);
  ++checks;
  if (warp_2048 != 32 * 16 || gae_cuda_chunks(2048, 16, 0) != warp_2048 || gae_cuda_chunks(2048, 16, 3) != 256 ||
      gae_cuda_chunks(4096, 3, 0) != 32 * 16 || gae_cuda_chunks(128, 8, 0) != gae_cuda_chunks(128, 8, 3) ||
      gae_cuda_chunks(2048, 64, 0) != gae_cuda_chunks(2048, 64, 3) || gae_cuda_chunks(8193, 2, 4) != gae_cuda_chunks(8193, 2, 3))
    fail("auto schedule: warp scan for 2048x16 and 4096x3 (512 lanes), register scan for 128x8, 2048x64 and T > 8192");
  const std::vector<int> sms = quick ? std::vector<int>{132} : std::vector<int>{132, 4, 1};
  for (const Case& c : cases) run_case(c, rng, sms, quick);
  if (quick) {
    // one SM: the normalising scans refuse a grid that would not be resident and fall back to two launches
    g_sms = 1;
    run_case({300, 7, G, L, 0.02, 0.05, false, true, true, true}, rng, {1}, quick);
  }
  std::printf("worst relative error %.3g (tolerance 2e-5)\n", g_worst);
  return report();
}
