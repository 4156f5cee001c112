// The dropout rule shared by the CPU and CUDA LoRA kernels (host and device).
//
// Element i (flat row-major index into x, i.e. t·d_in + k) belongs to group g = i / 8. One Philox4x32-10 block
// philox_words(seed, offset, g) (common/philox.h) gives four 32-bit words = eight 16-bit uniforms; element i uses
// the low (i even) or high (i odd) half of word (i % 8) / 2 and survives when that uniform u16 >= p16, with
// p16 = round(p·65536). One Philox block per 8 elements instead of one per element: dropout is regenerated
// in the forward and twice in the backward, and 10 Philox rounds per element would cost more than reading x.
// The price is a keep probability quantised to multiples of 2^-16, compensated exactly by scaling the kept
// values with 65536 / (65536 - p16).
#pragma once
#include <cmath>
#include <cstdint>
#include "../common/philox.h"

namespace sa2va {

// p in [0, 1) -> threshold on 16-bit uniforms (0 = keep everything).
inline uint32_t lora_dropout_p16(float p) {
  if (!(p > 0.0f)) return 0u;
  double q = std::nearbyint(static_cast<double>(p) * 65536.0);
  return q >= 65535.0 ? 65535u : static_cast<uint32_t>(q);
}

// 1/(1 - p') for the quantised p' = p16/65536.
inline float lora_dropout_scale(uint32_t p16) { return static_cast<float>(65536.0 / (65536.0 - p16)); }

// Bit l (0..7) set when element 8·group + l is kept.
SA2VA_HD uint32_t lora_keep_bits8(uint64_t seed, uint64_t offset, uint64_t group, uint32_t p16) {
  Philox4 w = philox_words(seed, offset, group);
  uint32_t bits = 0;
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
  for (int l = 0; l < 8; ++l) {
    uint32_t u = (w.v[l >> 1] >> ((l & 1) * 16)) & 0xffffu;
    bits |= static_cast<uint32_t>(u >= p16) << l;
  }
  return bits;
}

SA2VA_HD bool lora_keep(uint64_t seed, uint64_t offset, uint64_t index, uint32_t p16) {
  return (lora_keep_bits8(seed, offset, index >> 3, p16) >> (index & 7)) & 1u;
}

}  // namespace sa2va
