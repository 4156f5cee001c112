// Emulation stand-in for <cuda_fp16.h>: IEEE half with the project's own conversions (common/dtype.h).
#pragma once
#include "emu.h"
#include "common/dtype.h"
struct __half { uint16_t bits; };
inline float __half2float(__half h) { return sa2va::f16_to_float(h.bits); }
inline __half __float2half_rn(float f) { return __half{sa2va::float_to_f16(f)}; }
inline __half __ushort_as_half(unsigned short u) { return __half{u}; }
