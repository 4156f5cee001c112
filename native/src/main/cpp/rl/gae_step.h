// One GAE step, shared by the CPU and CUDA implementations (see gae.h).
#pragma once
#include <cstdint>
#include "../common/dtype.h"

namespace sa2va {

SA2VA_HD bool flag_at(const void* p, int dtype, int64_t i) {
  if (p == nullptr) return false;
  if (dtype == 3 /* U8 */) return static_cast<const uint8_t*>(p)[i] != 0;
  return static_cast<const float*>(p)[i] != 0.0f;
}

struct GaeStep { float delta, c; };

// Step (t, env) of a [T, N] rollout. `next` = V[t+1] or the bootstrap value.
SA2VA_HD GaeStep gae_step(float r, float v, float next, bool term, bool trunc, float trunc_value, float gamma,
                          float lambda) {
  const float nv = trunc ? trunc_value : next;  // a select: NaN in unused entries must not leak
  GaeStep s;
  s.delta = r + (term ? 0.0f : gamma * nv) - v;
  s.c = (term || trunc) ? 0.0f : gamma * lambda;
  return s;
}

}  // namespace sa2va
