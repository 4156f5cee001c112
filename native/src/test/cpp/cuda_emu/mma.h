// Emulation stand-in for <mma.h> (WMMA). Every thread of the warp holds the whole 16x16 tile and computes the
// product itself (the hardware distributes it over the lanes; code that treats fragments as opaque, as ours does,
// cannot tell the difference). Only lane 0 stores. The alignment and leading-dimension rules of the real API are
// checked, since breaking them faults or corrupts results on the GPU.
#pragma once
#include "emu.h"
#include "cuda_bf16.h"
#include "cuda_fp16.h"

namespace nvcuda {
namespace wmma {
struct row_major {};
struct col_major {};
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
enum layout_t { mem_row_major, mem_col_major };

inline float to_f(float v) { return v; }
inline float to_f(__half v) { return __half2float(v); }
inline float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  static_assert(M == 16 && N == 16 && K == 16, "emulated WMMA covers 16x16x16 only");
  float x[256];
};

template <typename T>
inline void check_ld(const T* p, unsigned ldm) {
  emu::check_aligned(p, 32, "wmma load pointer");
  if (ldm % (16 / sizeof(T)) != 0) { std::fprintf(stderr, "emu: wmma ldm %u not a multiple of %zu\n", ldm, 16 / sizeof(T)); std::abort(); }
}

// Only lane 0 stores, so only lane 0 needs the values: the other lanes check the arguments and return.
template <typename T>
inline void load_matrix_sync(fragment<matrix_a, 16, 16, 16, T, row_major>& f, const T* p, unsigned ldm) {
  check_ld(p, ldm);
  if (threadIdx.x % 32 != 0) return;
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 16; ++k) f.x[i * 16 + k] = to_f(p[i * ldm + k]);
}
template <typename T>
inline void load_matrix_sync(fragment<matrix_b, 16, 16, 16, T, row_major>& f, const T* p, unsigned ldm) {
  check_ld(p, ldm);
  if (threadIdx.x % 32 != 0) return;
  for (int k = 0; k < 16; ++k)
    for (int j = 0; j < 16; ++j) f.x[k * 16 + j] = to_f(p[k * ldm + j]);
}
template <typename T>
inline void load_matrix_sync(fragment<matrix_a, 16, 16, 16, T, col_major>& f, const T* p, unsigned ldm) {
  check_ld(p, ldm);
  if (threadIdx.x % 32 != 0) return;
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 16; ++k) f.x[i * 16 + k] = to_f(p[k * ldm + i]);
}
template <typename T>
inline void load_matrix_sync(fragment<matrix_b, 16, 16, 16, T, col_major>& f, const T* p, unsigned ldm) {
  check_ld(p, ldm);
  if (threadIdx.x % 32 != 0) return;
  for (int k = 0; k < 16; ++k)
    for (int j = 0; j < 16; ++j) f.x[k * 16 + j] = to_f(p[j * ldm + k]);
}
inline void fill_fragment(fragment<accumulator, 16, 16, 16, float>& f, float v) {
  for (float& e : f.x) e = v;
}
template <typename T, typename LA, typename LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, T, LA>& a,
                     const fragment<matrix_b, 16, 16, 16, T, LB>& b,
                     const fragment<accumulator, 16, 16, 16, float>& c) {
  if (threadIdx.x % 32 != 0) return;
  float r[256];
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      float acc = c.x[i * 16 + j];
      for (int k = 0; k < 16; ++k) acc += a.x[i * 16 + k] * b.x[k * 16 + j];
      r[i * 16 + j] = acc;
    }
  std::memcpy(d.x, r, sizeof r);
}
inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm, layout_t layout) {
  emu::check_aligned(p, 32, "wmma store pointer");
  if (ldm % 4 != 0) { std::fprintf(stderr, "emu: wmma store ldm %u not a multiple of 4\n", ldm); std::abort(); }
  if (threadIdx.x % 32 != 0) return;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) p[layout == mem_row_major ? i * ldm + j : j * ldm + i] = f.x[i * 16 + j];
}
}  // namespace wmma
}  // namespace nvcuda
