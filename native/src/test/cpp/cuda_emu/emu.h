// CPU emulation of the small part of CUDA that our kernels use, for testing kernel source without a GPU.
//
// A block's threads run as fibers (ucontext) on one OS thread, each until it reaches __syncthreads() or returns,
// in index order; blocks run one after another. Running every thread as far as possible before the next one starts
// is the most hostile schedule for a missing barrier (a thread reads shared memory that later threads have not
// written yet), and with AddressSanitizer every access outside a buffer fails. Warp-collective WMMA calls are
// emulated redundantly per thread (mma.h here). What it cannot catch: hardware-specific behaviour, performance,
// and races between blocks (blocks never overlap here, except in a cooperative launch: see run_blocks).
#pragma once
#include <ucontext.h>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <array>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#endif

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint4 { unsigned x, y, z, w; };
struct uint2 { unsigned x, y; };
struct float4 { float x, y, z, w; };
struct float2 { float x, y; };
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return uint2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline float2 make_float2(float x, float y) { return float2{x, y}; }

namespace emu {

struct State {
  dim3 thread, block, block_dim, grid_dim;
  int n = 0, cur = 0;
  int tpb = 0;              // threads per block: fiber i is thread i % tpb of the (i / tpb)-th block of the run
  unsigned first_block = 0;  // linear index of the run's first block
  std::vector<ucontext_t> ctx;
  std::vector<std::unique_ptr<char[]>> stacks;  // not zeroed: a cooperative launch keeps thousands alive at once
  // 0 runnable, 1 waiting at barrier, 2 finished, 3 waiting at a warp shuffle, 4 yielded in a spin wait
  std::vector<int> status;
  std::vector<std::vector<char>> dyn;  // dynamic shared memory of each block of the run
  std::vector<std::vector<char>> local;  // block_local scratch of each block of the run
  std::vector<std::array<uint64_t, 32>> shfl[2];  // per-thread values of the current warp shuffle (by parity)
  std::vector<unsigned> shfl_seq;  // shuffles done per thread
  ucontext_t sched;
  void (*body)(void*) = nullptr;
  void* arg = nullptr;
  const void* sched_stack_bottom = nullptr;
  size_t sched_stack_size = 0;
  // cp.async emulation (cuda_pipeline.h): per thread, the copies of the open group and the committed groups
  struct Copy { void* dst; const void* src; size_t bytes, zfill; };
  std::vector<std::vector<Copy>> open_group;
  std::vector<std::vector<std::vector<Copy>>> committed;
};

inline State& st() {
  static State s;
  return s;
}

constexpr size_t kStack = 256 * 1024;

inline void switch_to_sched(bool finishing) {
  State& s = st();
#ifdef EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(finishing ? nullptr : &fake, s.sched_stack_bottom, s.sched_stack_size);
#endif
  swapcontext(&s.ctx[s.cur], &s.sched);
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  (void)finishing;
}

inline void trampoline() {
  State& s = st();
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &s.sched_stack_bottom, &s.sched_stack_size);
#endif
  s.body(s.arg);
  s.status[s.cur] = 2;
  switch_to_sched(true);
}

inline void syncthreads() {
  State& s = st();
  s.status[s.cur] = 1;
  switch_to_sched(false);
}

// A full-warp shuffle: every lane publishes its value, waits until all lanes of its warp did (status 3), then
// reads lane `src`'s value. Slots are double-buffered by the shuffle's sequence number: a lane that runs ahead
// to its next shuffle writes the other buffer, and cannot get past that one before every lane has read this one.
// Values of up to 256 bytes (a whole struct of sums in one exchange: each shuffle costs two fiber switches).
inline void shuffle_bytes(const void* v, void* out, size_t bytes, int src) {
  State& s = st();
  assert(bytes <= sizeof(std::array<uint64_t, 32>));
  const int me = s.cur;
  const unsigned seq = s.shfl_seq[me]++;
  std::vector<std::array<uint64_t, 32>>& slots = s.shfl[seq & 1];
  std::memcpy(slots[me].data(), v, bytes);
  s.status[me] = 3;
  switch_to_sched(false);
  const int base = me & ~31;
  assert(base + src < s.n);
  std::memcpy(out, slots[base + src].data(), bytes);
}
inline uint64_t shuffle(uint64_t v, int src) {
  uint64_t r;
  shuffle_bytes(&v, &r, sizeof(v), src);
  return r;
}

// A spin wait on another block (grid barrier): gives the other blocks of a cooperative launch their turn.
inline void spin_yield() {
  State& s = st();
  s.status[s.cur] = 4;
  switch_to_sched(false);
}

inline void set_indices(int i) {
  State& s = st();
  s.cur = i;
  const unsigned local = static_cast<unsigned>(i % s.tpb), b = s.first_block + static_cast<unsigned>(i / s.tpb);
  s.thread = dim3(local % s.block_dim.x, local / s.block_dim.x, 0);
  s.block = dim3(b % s.grid_dim.x, b / s.grid_dim.x % s.grid_dim.y, b / (s.grid_dim.x * s.grid_dim.y));
}

// Runs the fibers [lo, hi) (one block) until all finished (true) or every live one waits at a barrier or in a
// spin wait with at least one spinning (false: it waits for another block).
inline bool run_range(int lo, int hi) {
  State& s = st();
  for (;;) {
    bool any = false;
    for (int i = lo; i < hi; ++i) {
      if (s.status[i] != 0) continue;
      any = true;
      set_indices(i);
#ifdef EMU_ASAN
      void* fake = nullptr;
      __sanitizer_start_switch_fiber(&fake, s.stacks[i].get(), kStack);
#endif
      swapcontext(&s.sched, &s.ctx[i]);
#ifdef EMU_ASAN
      __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    }
    int waiting = 0, done = 0, spinning = 0;
    for (int i = lo; i < hi; ++i) { waiting += s.status[i] == 1; done += s.status[i] == 2; spinning += s.status[i] == 4; }
    if (done == hi - lo) return true;
    // Warps whose lanes all wait at a shuffle go on (a lane at __syncthreads or finished meanwhile: divergence).
    bool released = false;
    for (int w = lo; w < hi; w += 32) {
      int at = 0, other = 0;
      for (int i = w; i < w + 32 && i < hi; ++i) { at += s.status[i] == 3; other += s.status[i] != 3; }
      if (at == 0) continue;
      if (other != 0) {
        std::fprintf(stderr, "emu: warp shuffle reached by %d lanes of warp %d, %d lanes elsewhere\n", at, (w - lo) / 32, other);
        std::abort();
      }
      for (int i = w; i < w + 32 && i < hi; ++i) s.status[i] = 0;
      released = true;
    }
    if (released) continue;
    if (spinning != 0) return false;
    if (!any && waiting == 0) break;
    // CUDA requires every live thread of the block at the barrier; a thread that exited early while others wait
    // is a divergent barrier (undefined on the GPU): report it instead of guessing.
    if (done != 0 && waiting != 0) {
      std::fprintf(stderr, "emu: __syncthreads reached by %d threads while %d have exited\n", waiting, done);
      std::abort();
    }
    for (int i = lo; i < hi; ++i) if (s.status[i] == 1) s.status[i] = 0;
  }
  return true;
}

// Runs body(arg) as `count` blocks (linear indices first, first + 1, ...) of `threads` fibers each, alive at the
// same time, with `smem` bytes of dynamic shared memory per block (filled with 0xff: NaN as floats, so reading
// what no thread wrote shows). One block runs until it finishes or stalls in a spin wait, then the next: blocks
// switch only there, so a block's static __shared__ variables (one copy for all blocks here) are never touched
// by another block between a barrier and the reads after it, as long as the spin waits follow the block's last
// use of them (true of grid_arrive's callers). count > 1 is a cooperative launch.
inline void run_blocks(unsigned first, unsigned count, int threads, size_t smem, void (*body)(void*), void* arg) {
  State& s = st();
  if (count > 1 && threads % 32 != 0) {
    std::fprintf(stderr, "emu: cooperative launch with %d threads per block (whole warps only)\n", threads);
    std::abort();
  }
  const int n = threads * static_cast<int>(count);
  s.n = n;
  s.tpb = threads;
  s.first_block = first;
  s.body = body;
  s.arg = arg;
  s.ctx.assign(n, ucontext_t{});
  while (static_cast<int>(s.stacks.size()) < n) s.stacks.emplace_back(new char[kStack]);
  s.status.assign(n, 0);
  s.shfl[0].assign(n, {});
  s.shfl[1].assign(n, {});
  s.shfl_seq.assign(n, 0);
  s.open_group.assign(n, {});
  s.committed.assign(n, {});
  s.dyn.assign(count, std::vector<char>(smem, static_cast<char>(0xff)));
  s.local.assign(count, {});
  for (int i = 0; i < n; ++i) {
    getcontext(&s.ctx[i]);
    s.ctx[i].uc_stack.ss_sp = s.stacks[i].get();
    s.ctx[i].uc_stack.ss_size = kStack;
    s.ctx[i].uc_link = nullptr;
    makecontext(&s.ctx[i], trampoline, 0);
  }
  std::vector<bool> finished(count, false);
  unsigned left = count;
  for (long round = 0; left > 0; ++round) {
    if (round > (1L << 20)) {
      std::fprintf(stderr, "emu: %u of %u blocks still spinning after %ld rounds (a grid barrier never released)\n",
                   left, count, round);
      std::abort();
    }
    for (unsigned b = 0; b < count; ++b) {
      if (finished[b]) continue;
      const int lo = static_cast<int>(b) * threads, hi = lo + threads;
      for (int i = lo; i < hi; ++i) if (s.status[i] == 4) s.status[i] = 0;  // spin once more
      if (run_range(lo, hi)) { finished[b] = true; --left; }
    }
  }
}

template <typename T>
T* dyn_smem() {
  State& s = st();
  return reinterpret_cast<T*>(s.dyn[s.cur / s.tpb].data());
}

// Per-block scratch of `bytes` bytes (zeroed on the block's first call), for a kernel's __shared__ array that must
// not be shared between the blocks of a cooperative launch (static __shared__ is one copy for all of them here).
inline void* block_local(size_t bytes) {
  State& s = st();
  std::vector<char>& v = s.local[s.cur / s.tpb];
  if (v.size() < bytes) v.resize(bytes, 0);
  return v.data();
}

template <typename... Args>
struct Launch {
  dim3 grid, block;
  void (*kernel)(Args...);
  size_t smem = 0;
  bool cooperative = false;  // all blocks alive at once (grid barriers); else one block after another
  template <typename... Actual>
  void operator()(Actual&&... actual) {
    std::tuple<Args...> args(std::forward<Actual>(actual)...);
    State& s = st();
    s.grid_dim = grid;
    s.block_dim = block;
    assert(block.z == 1);
    struct Ctx { void (*k)(Args...); std::tuple<Args...>* a; } c{kernel, &args};
    void (*body)(void*) = [](void* p) {
      Ctx* c = static_cast<Ctx*>(p);
      std::apply(c->k, *c->a);
    };
    const unsigned blocks = grid.x * grid.y * grid.z;
    const int threads = static_cast<int>(block.x * block.y);
    if (cooperative) {
      run_blocks(0, blocks, threads, smem, body, &c);
    } else {
      for (unsigned b = 0; b < blocks; ++b) run_blocks(b, 1, threads, smem, body, &c);
    }
  }
};

template <typename... Args>
Launch<Args...> launch(dim3 grid, dim3 block, void (*kernel)(Args...), size_t smem = 0, bool cooperative = false) {
  return Launch<Args...>{grid, block, kernel, smem, cooperative};
}

inline void check_aligned(const void* p, size_t bytes, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % bytes != 0) {
    std::fprintf(stderr, "emu: %s at %p is not %zu-byte aligned\n", what, p, bytes);
    std::abort();
  }
}

}  // namespace emu

#include <tuple>

#define threadIdx (::emu::st().thread)
#define blockIdx (::emu::st().block)
#define blockDim (::emu::st().block_dim)
#define gridDim (::emu::st().grid_dim)
#define __syncthreads() ::emu::syncthreads()
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define SA2VA_LAUNCH(grid, block, stream, ...) ::emu::launch(grid, block, __VA_ARGS__)

inline void __threadfence() {}
inline int min(int a, int b) { return a < b ? a : b; }
inline int atomicAdd(int* p, int v) { int old = *p; *p += v; return old; }
inline unsigned atomicAdd(unsigned* p, unsigned v) { unsigned old = *p; *p += v; return old; }
inline uint4 __ldg(const uint4* p) { emu::check_aligned(p, 16, "__ldg(uint4)"); return *p; }
inline uint2 __ldg(const uint2* p) { emu::check_aligned(p, 8, "__ldg(uint2)"); return *p; }
inline float4 __ldg(const float4* p) { emu::check_aligned(p, 16, "__ldg(float4)"); return *p; }
inline uint4 __ldcs(const uint4* p) { emu::check_aligned(p, 16, "__ldcs(uint4)"); return *p; }
inline uint2 __ldcs(const uint2* p) { emu::check_aligned(p, 8, "__ldcs(uint2)"); return *p; }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { auto old = *p; *p += v; return old; }
inline unsigned atomicExch(unsigned* p, unsigned v) { unsigned old = *p; *p = v; return old; }
inline void __nanosleep(unsigned) { ::emu::spin_yield(); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
template <typename T>
inline T emu_shfl(T v, int src) {
  static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
  uint64_t u = 0;
  std::memcpy(&u, &v, sizeof(T));
  u = ::emu::shuffle(u, src);
  T r;
  std::memcpy(&r, &u, sizeof(T));
  return r;
}
// __shfl_down_sync of a whole trivially copyable struct (emulation only: see mask_pass.cuh's warp_reduce).
template <typename T> inline T emu_shfl_down_struct(const T& v, int d) {
  const int lane = ::emu::st().cur & 31;
  T r;
  ::emu::shuffle_bytes(&v, &r, sizeof(T), lane + d < 32 ? lane + d : lane);
  return r;
}
// __shfl_xor_sync of a whole trivially copyable struct (emulation only: see last_block.cuh's warp_sum).
template <typename T> inline T emu_shfl_xor_struct(const T& v, int d) {
  const int lane = ::emu::st().cur & 31;
  T r;
  ::emu::shuffle_bytes(&v, &r, sizeof(T), lane ^ d);
  return r;
}
template <typename T> inline T __shfl_down_sync(unsigned mask, T v, int d) {
  assert(mask == 0xffffffffu);
  const int lane = ::emu::st().cur & 31;
  return emu_shfl(v, lane + d < 32 ? lane + d : lane);
}
template <typename T> inline T __shfl_sync(unsigned mask, T v, int src) {
  assert(mask == 0xffffffffu);
  return emu_shfl(v, src & 31);
}
template <typename T> inline T __shfl_xor_sync(unsigned mask, T v, int d) {
  assert(mask == 0xffffffffu);
  return emu_shfl(v, (::emu::st().cur & 31) ^ d);
}
template <typename T> inline T __ldg(const T* p) { return *p; }
template <typename T> inline T __ldcg(const T* p) { return *p; }
template <typename T> inline T __ldcs(const T* p) { return *p; }
