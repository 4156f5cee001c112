// Runs the CUDA LoRA kernels (native/src/main/cpp/lora/lora.cu, compiled for the CPU emulation in cuda_emu/)
// against the C++ CPU implementation (lora_cpu.cpp) on random data: every product, dtype, odd shapes, ranks 1..256,
// dropout, multi-adapter batches, and several SM counts so that the K dimension is split in different ways.
// Built and run by run-emu-tests.sh (with AddressSanitizer: any access outside a buffer aborts).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>
#include "lora/lora.h"
#include "lora/lora_dropout.h"
#include "common/dtype.h"
#include "emu_check.h"

using namespace sa2va;
using namespace emu_check;

namespace {

struct Buf {
  int dtype;
  std::vector<uint8_t> bytes;  // exactly numel·esize: ASan flags any access past the end
  int64_t n;
  Buf(int dt, int64_t numel) : dtype(dt), bytes(static_cast<size_t>(numel * esize(dt))), n(numel) {}
  static int64_t esize(int dt) { return dt == F32 ? 4 : dt == F64 ? 8 : 2; }
  void* ptr() { return bytes.data(); }
  float get(int64_t i) const {
    switch (dtype) {
      case F32: { float v; std::memcpy(&v, &bytes[i * 4], 4); return v; }
      case F16: { uint16_t h; std::memcpy(&h, &bytes[i * 2], 2); return f16_to_float(h); }
      default: { uint16_t h; std::memcpy(&h, &bytes[i * 2], 2); return bf16_to_float(h); }
    }
  }
  void set(int64_t i, float v) {
    switch (dtype) {
      case F32: std::memcpy(&bytes[i * 4], &v, 4); break;
      case F16: { uint16_t h = float_to_f16(v); std::memcpy(&bytes[i * 2], &h, 2); break; }
      default: { uint16_t h = float_to_bf16(v); std::memcpy(&bytes[i * 2], &h, 2); break; }
    }
  }
};

Buf random_buf(int dtype, int64_t n, std::mt19937& rng, float scale = 1.0f) {
  Buf b(dtype, n);
  std::normal_distribution<float> d(0.0f, scale);
  for (int64_t i = 0; i < n; ++i) b.set(i, d(rng));
  return b;
}

void expect_close(const std::string& what, const Buf& got, const Buf& ref, double tol) {
  ++checks;
  double num = 0, den = 0;
  int64_t bad_zero = 0;
  for (int64_t i = 0; i < ref.n; ++i) {
    const double g = got.get(i), r = ref.get(i);
    if (!std::isfinite(g)) { num = INFINITY; break; }
    num += (g - r) * (g - r);
    den += r * r;
    if ((g == 0) != (r == 0) && std::max(std::fabs(g), std::fabs(r)) > 1e-3 * std::sqrt(den / (i + 1) + 1e-30)) ++bad_zero;
  }
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  if (!(rel <= tol) || bad_zero) {
    char msg[96];
    std::snprintf(msg, sizeof msg, ": rel err %.3g (tol %.1g), %lld mismatched zeros", rel, tol,
                  static_cast<long long>(bad_zero));
    fail(what + msg);
  }
}

void expect_close_f(const std::string& what, const std::vector<float>& got, const std::vector<float>& ref, double tol) {
  ++checks;
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  if (!(rel <= tol)) {
    char msg[64];
    std::snprintf(msg, sizeof msg, ": rel err %.3g (tol %.1g)", rel, tol);
    fail(what + msg);
  }
}

const char* dname(int dt) { return dt == F32 ? "f32" : dt == F16 ? "f16" : "bf16"; }

// Tolerances: both sides accumulate in fp32 from the same rounded inputs, so they differ by summation order and
// by the occasional 1-ulp flip where xs / ds are rounded to the dtype.
double tol_of(int dt) { return dt == F32 ? 2e-5 : dt == F16 ? 2e-3 : 8e-3; }

// misalign: x starts one element after a 16-byte boundary (the kernels must take their element-wise path).
// fused: lora_set_fused's mode for the single-adapter products that read x (-1 = the library's default).
void run_case(int dtype, int64_t rows, int64_t d_in, int64_t d_out, int64_t r, float p, int n_adapters, bool bias,
              uint32_t seed, bool misalign = false, int fused = -1) {
  std::mt19937 rng(seed);
  const bool multi = n_adapters > 0;
  const int64_t na = multi ? n_adapters : 1;
  std::string tag = std::string(dname(dtype)) + " rows=" + std::to_string(rows) + " d_in=" + std::to_string(d_in) +
                    " d_out=" + std::to_string(d_out) + " r=" + std::to_string(r) + " p=" + std::to_string(p) +
                    " adapters=" + std::to_string(n_adapters) + " sms=" + std::to_string(g_sms) +
                    (misalign ? " misaligned x" : "") + " fused=" + std::to_string(fused);
  lora_set_fused(fused);
  // x as a view one element into a larger buffer when misaligned; xb is what the kernels get
  Buf xbig = random_buf(dtype, rows * d_in + (misalign ? 1 : 0), rng);
  Buf x(dtype, rows * d_in);
  std::memcpy(x.ptr(), static_cast<char*>(xbig.ptr()) + (misalign ? Buf::esize(dtype) : 0), x.bytes.size());
  void* xb = misalign ? static_cast<char*>(xbig.ptr()) + Buf::esize(dtype) : x.ptr();
  Buf A = random_buf(dtype, na * r * d_in, rng, 0.3f);
  Buf B = random_buf(dtype, na * d_out * r, rng, 0.3f);
  Buf bvec = random_buf(dtype, d_out, rng);
  std::vector<int64_t> index(static_cast<size_t>(rows));
  std::vector<float> scales(static_cast<size_t>(na));
  for (auto& s : scales) s = 0.5f + static_cast<float>(rng() % 100) / 100.0f;
  for (int64_t t = 0; t < rows; ++t) {
    // mostly grouped runs, with a few rows of other, absent (-1) and out-of-range adapters
    int64_t a = (t * na) / rows;
    const uint32_t u = rng() % 10;
    if (u == 0) a = -1;
    if (u == 1) a = na + 2;
    if (u == 2) a = rng() % na;
    index[t] = a;
  }
  const float scale = 1.7f;
  const uint64_t dseed = 0x1234567890abcdefull ^ seed, doff = 77;

  Buf xs_c(dtype, rows * r), y_c(dtype, rows * d_out), xs_g(dtype, rows * r), y_g(dtype, rows * d_out);
  lora_forward_cpu(x.ptr(), dtype, rows, d_in, d_out, r, A.ptr(), B.ptr(), bias ? bvec.ptr() : nullptr, scale,
                   multi ? index.data() : nullptr, na, scales.data(), p, dseed, doff, xs_c.ptr(), y_c.ptr());
  lora_forward_cuda(xb, dtype, rows, d_in, d_out, r, A.ptr(), B.ptr(), bias ? bvec.ptr() : nullptr, scale,
                    multi ? index.data() : nullptr, na, scales.data(), p, dseed, doff, xs_g.ptr(), y_g.ptr(), nullptr);
  expect_close("forward xs " + tag, xs_g, xs_c, tol_of(dtype));
  expect_close("forward y " + tag, y_g, y_c, tol_of(dtype));

  // xs kept in scratch (inference): y must not change
  {
    Buf y2(dtype, rows * d_out);
    lora_forward_cuda(xb, dtype, rows, d_in, d_out, r, A.ptr(), B.ptr(), bias ? bvec.ptr() : nullptr, scale,
                      multi ? index.data() : nullptr, na, scales.data(), p, dseed, doff, nullptr, y2.ptr(), nullptr);
    expect_close("forward y (xs in scratch) " + tag, y2, y_g, 0.0);
  }
  if (multi) {
    lora_set_fused(-1);
    return;
  }

  Buf dy = random_buf(dtype, rows * d_out, rng);
  Buf dx_c(dtype, rows * d_in), dx_g(dtype, rows * d_in);
  // gradients start non-zero: the kernels accumulate
  std::vector<float> gA0(static_cast<size_t>(r * d_in)), gB0(static_cast<size_t>(d_out * r));
  std::normal_distribution<float> nd;
  for (auto& v : gA0) v = nd(rng);
  for (auto& v : gB0) v = nd(rng);
  std::vector<float> gA_c = gA0, gB_c = gB0, gA_g = gA0, gB_g = gB0;
  lora_backward_cpu(x.ptr(), dy.ptr(), xs_c.ptr(), dtype, rows, d_in, d_out, r, A.ptr(), B.ptr(), scale, p, dseed,
                    doff, gA_c.data(), gB_c.data(), dx_c.ptr());
  lora_backward_cuda(xb, dy.ptr(), xs_c.ptr(), dtype, rows, d_in, d_out, r, A.ptr(), B.ptr(), scale, p, dseed,
                     doff, gA_g.data(), gB_g.data(), dx_g.ptr(), nullptr);
  lora_set_fused(-1);
  for (size_t i = 0; i < gA_c.size(); ++i) { gA_c[i] -= gA0[i]; gA_g[i] -= gA0[i]; }
  for (size_t i = 0; i < gB_c.size(); ++i) { gB_c[i] -= gB0[i]; gB_g[i] -= gB0[i]; }
  expect_close_f("backward dA " + tag, gA_g, gA_c, tol_of(dtype));
  expect_close_f("backward dB " + tag, gB_g, gB_c, tol_of(dtype));
  expect_close("backward dx " + tag, dx_g, dx_c, tol_of(dtype));
}

void run_merge(int dtype, int64_t d_out, int64_t d_in, int64_t r, uint32_t seed) {
  std::mt19937 rng(seed);
  Buf w = random_buf(dtype, d_out * d_in, rng);
  Buf w2 = w;
  std::vector<float> A(static_cast<size_t>(r * d_in)), B(static_cast<size_t>(d_out * r));
  std::normal_distribution<float> nd;
  for (auto& v : A) v = nd(rng);
  for (auto& v : B) v = nd(rng);
  lora_merge_cpu(w.ptr(), dtype, d_out, d_in, r, A.data(), B.data(), F32, 0.7f);
  lora_merge_cuda(w2.ptr(), dtype, d_out, d_in, r, A.data(), B.data(), 0.7f, nullptr);
  expect_close(std::string("merge ") + dname(dtype) + " " + std::to_string(d_out) + "x" + std::to_string(d_in) + " r=" +
                   std::to_string(r), w2, w, tol_of(dtype));
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = flag(argc, argv, "--quick");
  const bool fused_only = flag(argc, argv, "--fused");  // lowrank_kernel's cases alone
  struct Shape { int64_t rows, d_in, d_out, r; };
  std::vector<Shape> shapes = {
      {1, 1, 1, 1}, {5, 7, 9, 3}, {64, 64, 64, 16}, {70, 33, 130, 8}, {130, 96, 40, 17},
      {33, 256, 129, 64}, {20, 40, 24, 128}, {9, 24, 16, 256}, {150, 72, 88, 32}, {3, 300, 5, 2},
  };
  if (quick) shapes.resize(6);
  // more rows than one K chunk of the row reductions (dA, dB: up to 128 rows per chunk), so those run several chunks
  // per split and several splits, with a row tail; r = 100 pads to 128 (smaller chunks, larger Q tile)
  shapes.push_back({300, 40, 24, 16});
  shapes.push_back({270, 17, 33, 100});
  uint32_t seed = 1;
  for (int sms : {132, 3, 1}) {
    if (fused_only) break;
    g_sms = sms;
    for (int dtype : {F32, BF16, F16}) {
      // quick (CI): every dtype at 132 SMs; at 3 and 1 SMs (K split differently, and the persistent expand kernel
      // walking several tiles per block) fp32 (FMA path) and, at 1 SM, bf16 (WMMA path)
      if (quick && sms != 132 && (dtype == F16 || (dtype == BF16 && sms != 1))) continue;
      for (const Shape& s : shapes) {
        run_case(dtype, s.rows, s.d_in, s.d_out, s.r, 0.0f, 0, true, seed++);
        run_case(dtype, s.rows, s.d_in, s.d_out, s.r, 0.3f, 0, false, seed++);
        if (s.rows >= 5) run_case(dtype, s.rows, s.d_in, s.d_out, s.r, 0.0f, 3, true, seed++);
      }
    }
  }
  // lowrank_kernel (16-bit, r <= 128) against the CPU, in each mode of lora_set_fused: 1 (ours with dropout),
  // 2 (ours at p = 0 too), 0 (the default: cuBLAS with keep⊙x through the workspace). Shapes: several K chunks and
  // splits with a chunk tail (d_in = 1032, rows = 520), tails of both tile dimensions, r = 1 and every padded rank
  // including the r = 256 fallback, d_in odd and x misaligned (element-wise loads), r not a multiple of 8 (ds read
  // element-wise in the dA product).
  struct FusedCase { int64_t rows, d_in, d_out, r; bool misalign; };
  std::vector<FusedCase> fused_cases = {
      {520, 1032, 24, 16, false}, {300, 1032, 20, 64, false}, {150, 520, 16, 128, false}, {70, 40, 24, 1, false},
      {67, 33, 20, 5, false},     {130, 200, 48, 32, true},   {40, 64, 16, 100, false},   {33, 48, 16, 256, false},
  };
  if (quick) fused_cases.resize(6);
  for (int sms : {132, 2}) {
    g_sms = sms;
    for (const FusedCase& c : fused_cases)
      for (int mode : {1, 2, 0}) {
        // quick (CI): mode 0 is the path fp32 takes anyway
        if (quick && mode == 0) continue;
        const int dtype = (seed & 1) ? BF16 : F16;
        run_case(dtype, c.rows, c.d_in, c.d_out, c.r, mode == 2 ? 0.0f : 0.3f, 0, mode != 0, seed++, c.misalign, mode);
      }
  }
  for (int dtype : {F32, BF16, F16}) {
    run_merge(dtype, 70, 130, 5, seed++);
    run_merge(dtype, 64, 64, 64, seed++);
  }
  return report();
}
