// Scalar conversions usable on host and device. bf16/fp16 are carried as raw 16-bit patterns so that
// the CPU implementations need no CUDA headers.
#pragma once
#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define SA2VA_HD __host__ __device__ __forceinline__
#else
#define SA2VA_HD inline
#endif

namespace sa2va {

struct bf16_t { uint16_t bits; };
struct f16_t { uint16_t bits; };

SA2VA_HD float bits_to_float(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f; std::memcpy(&f, &u, 4); return f;
#endif
}
SA2VA_HD uint32_t float_to_bits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u; std::memcpy(&u, &f, 4); return u;
#endif
}

// bf16 is the top half of an fp32.
SA2VA_HD float bf16_to_float(uint16_t b) { return bits_to_float(static_cast<uint32_t>(b) << 16); }

// Round to nearest even, NaN kept quiet (same rule as torch/c10).
SA2VA_HD uint16_t float_to_bf16(float f) {
  uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// IEEE half -> float, including subnormals, inf and NaN.
SA2VA_HD float f16_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while ((man & 0x400u) == 0) { man <<= 1; --exp; }
      man &= 0x3ffu;
      u = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 0x1f) {
    u = sign | 0x7f800000u | (man << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  return bits_to_float(u);
}

// float -> IEEE half, round to nearest even.
SA2VA_HD uint16_t float_to_f16(float f) {
  uint32_t u = float_to_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);         // NaN
  if (absu >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);        // overflow -> inf
  if (absu < 0x38800000u) {                                                      // subnormal or zero
    if (absu < 0x33000000u) return static_cast<uint16_t>(sign);
    uint32_t e = absu >> 23;
    uint32_t m = (absu & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;  // 14..24
    uint32_t half = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t h = ((absu >> 13) - ((127 - 15) << 10));
  uint32_t rem = absu & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

// Loading one element of a tensor of a runtime dtype as float (CPU paths).
template <typename T> SA2VA_HD float to_float(T v);
template <> SA2VA_HD float to_float<float>(float v) { return v; }
template <> SA2VA_HD float to_float<bf16_t>(bf16_t v) { return bf16_to_float(v.bits); }
template <> SA2VA_HD float to_float<f16_t>(f16_t v) { return f16_to_float(v.bits); }

template <typename T> SA2VA_HD T from_float(float v);
template <> SA2VA_HD float from_float<float>(float v) { return v; }
template <> SA2VA_HD bf16_t from_float<bf16_t>(float v) { return bf16_t{float_to_bf16(v)}; }
template <> SA2VA_HD f16_t from_float<f16_t>(float v) { return f16_t{float_to_f16(v)}; }

inline const char* dtype_name(int d) {
  switch (d) {
    case 0: return "float32";
    case 1: return "float16";
    case 2: return "bfloat16";
    case 3: return "uint8";
    case 4: return "int64";
    case 5: return "float64";
    case 6: return "int32";
    default: return "unknown";
  }
}

}  // namespace sa2va
