// Philox4x32-10 counter-based random numbers (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC'11), usable on host and device. Counter-based: the numbers for element i are a pure function of
// (key = seed, counter = (i, offset)), so a CPU loop and any CUDA grid produce the same stream, dropout masks
// and Bernoulli samples can be regenerated in backward instead of stored, and results do not depend on
// thread count or launch configuration. Same constants as the reference (Random123) and as cuRAND/PyTorch,
// though the counter layout is our own, so streams are not bit-identical to torch's.
#pragma once
#include <cstdint>
#include "dtype.h"  // SA2VA_HD

namespace sa2va {

struct Philox4 { uint32_t v[4]; };

SA2VA_HD uint32_t philox_mulhi(uint32_t a, uint32_t b) {
#ifdef __CUDA_ARCH__
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

// Ten rounds of the Philox-4x32 bijection of `counter` under `key`.
SA2VA_HD Philox4 philox4x32(Philox4 c, uint32_t k0, uint32_t k1) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0 = philox_mulhi(M0, c.v[0]), lo0 = M0 * c.v[0];
    uint32_t hi1 = philox_mulhi(M1, c.v[2]), lo1 = M1 * c.v[2];
    Philox4 n;
    n.v[0] = hi1 ^ c.v[1] ^ k0;
    n.v[1] = lo1;
    n.v[2] = hi0 ^ c.v[3] ^ k1;
    n.v[3] = lo0;
    c = n;
    k0 += W0;
    k1 += W1;
  }
  return c;
}

// Four random words for the 64-bit element index `index` of stream `offset` under a 64-bit `seed`.
// Convention used across the library: element i of a tensor uses counter (i_lo, i_hi, offset_lo, offset_hi);
// an element needing more than 4 words uses consecutive offsets.
SA2VA_HD Philox4 philox_words(uint64_t seed, uint64_t offset, uint64_t index) {
  Philox4 c;
  c.v[0] = static_cast<uint32_t>(index);
  c.v[1] = static_cast<uint32_t>(index >> 32);
  c.v[2] = static_cast<uint32_t>(offset);
  c.v[3] = static_cast<uint32_t>(offset >> 32);
  return philox4x32(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Uniform float in [0, 1) from the top 24 bits of a word (every value exactly representable, never 1.0).
SA2VA_HD float philox_uniform(uint32_t w) { return static_cast<float>(w >> 8) * (1.0f / 16777216.0f); }

// Uniform float in [0, 1) for element `index`: word 0 of its counter block.
SA2VA_HD float philox_uniform_at(uint64_t seed, uint64_t offset, uint64_t index) {
  return philox_uniform(philox_words(seed, offset, index).v[0]);
}

}  // namespace sa2va
