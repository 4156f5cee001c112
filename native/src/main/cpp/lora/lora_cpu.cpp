// CPU implementation of the LoRA kernels (lora.h). Plain loops: it is the reference the CUDA kernels are tested
// against and the path for CPU tensors, so it favours obviously-right over fast. It rounds where the CUDA kernels
// round (xs and ds are stored in the tensor dtype and used in that form), so the two agree to accumulation order.
#include <cmath>
#include <limits>
#include <vector>
#include "lora.h"
#include "lora_dropout.h"
#include "../common/dtype.h"
#include "../common/errors.h"
#include "../common/parallel.h"

namespace sa2va {

namespace {

inline double load(const double* p, int64_t i) { return p[i]; }
template <typename T>
inline float load(const T* p, int64_t i) { return to_float(p[i]); }
inline void store(double* p, int64_t i, double v) { p[i] = v; }
template <typename T>
inline void store(T* p, int64_t i, float v) { p[i] = from_float<T>(v); }

// fp64 tensors accumulate in fp64 (used for finite-difference checks), everything else in fp32 like the GPU.
template <typename T> struct Acc { using type = float; };
template <> struct Acc<double> { using type = double; };

// Dropout keep bits for one row of x, regenerated exactly as on the GPU (one Philox block per 8 elements).
struct RowMask {
  uint64_t seed, offset;
  uint32_t p16;
  bool on;
  std::vector<uint8_t> keep;
  void fill(int64_t row, int64_t d_in) {
    keep.assign(static_cast<size_t>(d_in), 1);
    if (!on) return;
    const int64_t base = row * d_in;
    uint64_t group = ~0ull;
    uint32_t bits = 0;
    for (int64_t k = 0; k < d_in; ++k) {
      const uint64_t i = static_cast<uint64_t>(base + k);
      if ((i >> 3) != group) { group = i >> 3; bits = lora_keep_bits8(seed, offset, group, p16); }
      keep[k] = (bits >> (i & 7)) & 1u;
    }
  }
};

void check_common(const char* fn, int64_t rows, int64_t d_in, int64_t d_out, int64_t rank, float p) {
  SA2VA_CHECK_ARG(rows >= 1 && d_in >= 1 && d_out >= 1, fn, ": need rows, d_in, d_out >= 1, got rows=", rows,
                  " d_in=", d_in, " d_out=", d_out);
  SA2VA_CHECK_ARG(rank >= 1 && rank <= kLoraMaxRank, fn, ": rank must be in [1, ", kLoraMaxRank, "], got ", rank);
  SA2VA_CHECK_ARG(p >= 0.0f && p < 1.0f, fn, ": dropout p must be in [0, 1), got ", p);
}

template <typename T>
void forward_impl(const T* x, int64_t rows, int64_t d_in, int64_t d_out, int64_t rank, const T* A, const T* B,
                  const T* bias, float scale, const int64_t* adapter, int64_t n_adapters, const float* scales,
                  float p, uint64_t seed, uint64_t offset, T* xs, T* y) {
  using acc_t = typename Acc<T>::type;
  const uint32_t p16 = lora_dropout_p16(p);
  const acc_t kscale = static_cast<acc_t>(lora_dropout_scale(p16));
  parallel_for(rows, 16, [&](int64_t b, int64_t e) {
    RowMask mask{seed, offset, p16, p16 != 0, {}};
    std::vector<acc_t> xr(static_cast<size_t>(rank));
    for (int64_t t = b; t < e; ++t) {
      int64_t a = 0;
      bool active = true;
      acc_t s = static_cast<acc_t>(scale);
      if (adapter) {
        a = adapter[t];
        active = a >= 0 && a < n_adapters;
        s = active ? static_cast<acc_t>(scales[a]) : acc_t(0);
      }
      const T* Aa = A + (active ? a : 0) * rank * d_in;
      const T* Ba = B + (active ? a : 0) * d_out * rank;
      mask.fill(t, d_in);
      for (int64_t j = 0; j < rank; ++j) {
        acc_t acc = 0;
        if (active) {
          for (int64_t k = 0; k < d_in; ++k)
            if (mask.keep[k]) acc += static_cast<acc_t>(load(x, t * d_in + k)) * load(Aa, j * d_in + k);
        }
        // xs is stored in the tensor dtype and used in that form, as on the GPU
        store(xs, t * rank + j, acc * s * kscale);
        xr[j] = load(xs, t * rank + j);
      }
      for (int64_t n = 0; n < d_out; ++n) {
        acc_t acc = 0;
        if (active)
          for (int64_t j = 0; j < rank; ++j) acc += xr[j] * load(Ba, n * rank + j);
        if (bias) acc += load(bias, n);
        store(y, t * d_out + n, acc);
      }
    }
  });
}

template <typename T>
void backward_impl(const T* x, const T* dy, const T* xs, int64_t rows, int64_t d_in, int64_t d_out, int64_t rank,
                   const T* A, const T* B, float scale, float p, uint64_t seed, uint64_t offset,
                   typename Acc<T>::type* gA, typename Acc<T>::type* gB, T* dx) {
  using acc_t = typename Acc<T>::type;
  const uint32_t p16 = lora_dropout_p16(p);
  const acc_t ks = static_cast<acc_t>(scale) * static_cast<acc_t>(lora_dropout_scale(p16));
  // ds = dY·B, rounded to the dtype like the GPU's scratch copy
  std::vector<T> ds(static_cast<size_t>(rows * rank));
  parallel_for(rows, 16, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t)
      for (int64_t j = 0; j < rank; ++j) {
        acc_t acc = 0;
        for (int64_t n = 0; n < d_out; ++n) acc += static_cast<acc_t>(load(dy, t * d_out + n)) * load(B, n * rank + j);
        store(ds.data(), t * rank + j, acc);
      }
  });
  // dB += dYᵀ·xs
  parallel_for(d_out, 16, [&](int64_t b, int64_t e) {
    std::vector<acc_t> acc(static_cast<size_t>(rank));
    for (int64_t n = b; n < e; ++n) {
      std::fill(acc.begin(), acc.end(), acc_t(0));
      for (int64_t t = 0; t < rows; ++t) {
        const acc_t g = load(dy, t * d_out + n);
        for (int64_t j = 0; j < rank; ++j) acc[j] += g * load(xs, t * rank + j);
      }
      for (int64_t j = 0; j < rank; ++j) gB[n * rank + j] += acc[j];
    }
  });
  // dA += s·dsᵀ·drop(x): rows outer so each row's mask is generated once per thread chunk of k... kept simple:
  // every thread owns a slice of A's columns and regenerates the masks of all rows for that slice.
  parallel_for(d_in, 64, [&](int64_t b, int64_t e) {
    std::vector<acc_t> acc(static_cast<size_t>(rank * (e - b)), acc_t(0));
    for (int64_t t = 0; t < rows; ++t) {
      for (int64_t k = b; k < e; ++k) {
        const uint64_t i = static_cast<uint64_t>(t * d_in + k);
        if (p16 != 0 && !lora_keep(seed, offset, i, p16)) continue;
        const acc_t xv = load(x, t * d_in + k);
        for (int64_t j = 0; j < rank; ++j) acc[(k - b) * rank + j] += static_cast<acc_t>(load(ds.data(), t * rank + j)) * xv;
      }
    }
    for (int64_t k = b; k < e; ++k)
      for (int64_t j = 0; j < rank; ++j) gA[j * d_in + k] += ks * acc[(k - b) * rank + j];
  });
  // dx = s·(ds·A) ⊙ keep/(1-p')
  parallel_for(rows, 16, [&](int64_t b, int64_t e) {
    RowMask mask{seed, offset, p16, p16 != 0, {}};
    for (int64_t t = b; t < e; ++t) {
      mask.fill(t, d_in);
      for (int64_t k = 0; k < d_in; ++k) {
        acc_t acc = 0;
        if (mask.keep[k])
          for (int64_t j = 0; j < rank; ++j) acc += static_cast<acc_t>(load(ds.data(), t * rank + j)) * load(A, j * d_in + k);
        store(dx, t * d_in + k, acc * ks);
      }
    }
  });
}

template <typename T, typename AB>
void merge_impl(T* w, int64_t d_out, int64_t d_in, int64_t rank, const AB* A, const AB* B, double scale) {
  parallel_for(d_out, 4, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n)
      for (int64_t k = 0; k < d_in; ++k) {
        double acc = 0;  // merge happens once per deployment: fp64 keeps it to one rounding
        for (int64_t j = 0; j < rank; ++j) acc += static_cast<double>(B[n * rank + j]) * static_cast<double>(A[j * d_in + k]);
        const double v = static_cast<double>(load(w, n * d_in + k)) + scale * acc;
        store(w, n * d_in + k, static_cast<typename Acc<T>::type>(v));
      }
  });
}

}  // namespace

void lora_forward_cpu(const void* x, int dtype, int64_t rows, int64_t d_in, int64_t d_out, int64_t rank,
                      const void* lora_a, const void* lora_b, const void* bias, float scale,
                      const int64_t* adapter_index, int64_t n_adapters, const float* adapter_scales,
                      float dropout_p, uint64_t seed, uint64_t offset, void* xs, void* y) {
  const char* fn = "lora_forward_cpu";
  SA2VA_CHECK_ARG(x && lora_a && lora_b && xs && y, fn, ": null pointer");
  check_common(fn, rows, d_in, d_out, rank, dropout_p);
  SA2VA_CHECK_ARG(!adapter_index || (n_adapters >= 1 && adapter_scales), fn,
                  ": adapter_index needs n_adapters >= 1 and adapter_scales");
  switch (dtype) {
#define SA2VA_LORA_FWD(DT, T)                                                                                   \
  case DT:                                                                                                      \
    forward_impl(static_cast<const T*>(x), rows, d_in, d_out, rank, static_cast<const T*>(lora_a),             \
                 static_cast<const T*>(lora_b), static_cast<const T*>(bias), scale, adapter_index, n_adapters, \
                 adapter_scales, dropout_p, seed, offset, static_cast<T*>(xs), static_cast<T*>(y));             \
    break;
    SA2VA_LORA_FWD(F32, float)
    SA2VA_LORA_FWD(F16, f16_t)
    SA2VA_LORA_FWD(BF16, bf16_t)
    SA2VA_LORA_FWD(F64, double)
#undef SA2VA_LORA_FWD
    default: fail_arg(str_cat(fn, ": dtype ", dtype_name(dtype), " not supported (float32, float16, bfloat16, float64)"));
  }
}

void lora_backward_cpu(const void* x, const void* dy, const void* xs, int dtype, int64_t rows, int64_t d_in,
                       int64_t d_out, int64_t rank, const void* lora_a, const void* lora_b, float scale,
                       float dropout_p, uint64_t seed, uint64_t offset, void* grad_a, void* grad_b, void* dx) {
  const char* fn = "lora_backward_cpu";
  SA2VA_CHECK_ARG(x && dy && xs && lora_a && lora_b && grad_a && grad_b && dx, fn, ": null pointer");
  check_common(fn, rows, d_in, d_out, rank, dropout_p);
  switch (dtype) {
#define SA2VA_LORA_BWD(DT, T)                                                                                  \
  case DT:                                                                                                     \
    backward_impl(static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<const T*>(xs), rows, d_in, \
                  d_out, rank, static_cast<const T*>(lora_a), static_cast<const T*>(lora_b), scale, dropout_p, \
                  seed, offset, static_cast<Acc<T>::type*>(grad_a), static_cast<Acc<T>::type*>(grad_b),       \
                  static_cast<T*>(dx));                                                                        \
    break;
    SA2VA_LORA_BWD(F32, float)
    SA2VA_LORA_BWD(F16, f16_t)
    SA2VA_LORA_BWD(BF16, bf16_t)
    SA2VA_LORA_BWD(F64, double)
#undef SA2VA_LORA_BWD
    default: fail_arg(str_cat(fn, ": dtype ", dtype_name(dtype), " not supported (float32, float16, bfloat16, float64)"));
  }
}

void lora_merge_cpu(void* w, int dtype, int64_t d_out, int64_t d_in, int64_t rank, const void* lora_a,
                    const void* lora_b, int adapter_dtype, float scale) {
  const char* fn = "lora_merge_cpu";
  SA2VA_CHECK_ARG(w && lora_a && lora_b, fn, ": null pointer");
  check_common(fn, 1, d_in, d_out, rank, 0.0f);
  SA2VA_CHECK_ARG(adapter_dtype == F32 || adapter_dtype == F64, fn, ": adapter dtype must be float32 or float64, got ",
                  dtype_name(adapter_dtype));
  auto run = [&](auto* wt) {
    if (adapter_dtype == F32)
      merge_impl(wt, d_out, d_in, rank, static_cast<const float*>(lora_a), static_cast<const float*>(lora_b), scale);
    else
      merge_impl(wt, d_out, d_in, rank, static_cast<const double*>(lora_a), static_cast<const double*>(lora_b), scale);
  };
  switch (dtype) {
    case F32: run(static_cast<float*>(w)); break;
    case F16: run(static_cast<f16_t*>(w)); break;
    case BF16: run(static_cast<bf16_t*>(w)); break;
    case F64: run(static_cast<double*>(w)); break;
    default: fail_arg(str_cat(fn, ": dtype ", dtype_name(dtype), " not supported (float32, float16, bfloat16, float64)"));
  }
}

void lora_dropout_mask_cpu(int64_t n, float dropout_p, uint64_t seed, uint64_t offset, uint8_t* keep) {
  SA2VA_CHECK_ARG(keep && n >= 0, "lora_dropout_mask_cpu: null pointer or negative size");
  SA2VA_CHECK_ARG(dropout_p >= 0.0f && dropout_p < 1.0f, "lora_dropout_mask_cpu: p must be in [0, 1), got ", dropout_p);
  const uint32_t p16 = lora_dropout_p16(dropout_p);
  parallel_for((n + 7) / 8, 4096, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g) {
      const uint32_t bits = lora_keep_bits8(seed, offset, static_cast<uint64_t>(g), p16);
      for (int64_t l = 0; l < 8 && g * 8 + l < n; ++l) keep[g * 8 + l] = (bits >> l) & 1u;
    }
  });
}

}  // namespace sa2va
