// Emulation stand-in for <cuda_bf16.h>.
#pragma once
#include "emu.h"
#include "common/dtype.h"
struct __nv_bfloat16 { uint16_t bits; };
inline float __bfloat162float(__nv_bfloat16 h) { return sa2va::bf16_to_float(h.bits); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16{sa2va::float_to_bf16(f)}; }
