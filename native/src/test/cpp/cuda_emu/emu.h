// CPU emulation of the small part of CUDA that our kernels use, for testing kernel source without a GPU.
//
// A block's threads run as fibers (ucontext) on one OS thread, each until it reaches __syncthreads() or returns,
// in index order; blocks run one after another. Running every thread as far as possible before the next one starts
// is the most hostile schedule for a missing barrier (a thread reads shared memory that later threads have not
// written yet), and with AddressSanitizer every access outside a buffer fails. Warp-collective WMMA calls are
// emulated redundantly per thread (mma.h here). What it cannot catch: hardware-specific behaviour, performance,
// and races between blocks (blocks only take turns: see launch_cooperative).
#pragma once
#include <ucontext.h>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <array>
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
  std::vector<ucontext_t> ctx;
  std::vector<std::vector<char>> stacks;
  std::vector<int> status;  // 0 runnable, 1 waiting at barrier, 2 finished, 3 waiting at a warp shuffle, 4 spinning
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
  // Per-block storage (block_local): a cooperative launch's blocks interleave, and __shared__ is a static here.
  std::vector<char> local;
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

// Sets up body(arg) as one block of `threads` fibers (run by drive_block).
inline void start_block(int threads, void (*body)(void*), void* arg) {
  State& s = st();
  s.n = threads;
  s.body = body;
  s.arg = arg;
  s.ctx.assign(threads, ucontext_t{});
  if (static_cast<int>(s.stacks.size()) < threads) s.stacks.resize(threads, std::vector<char>(kStack));
  s.status.assign(threads, 0);
  s.shfl[0].assign(threads, {});
  s.shfl[1].assign(threads, {});
  s.shfl_seq.assign(threads, 0);
  s.open_group.assign(threads, {});
  s.committed.assign(threads, {});
  s.local.clear();
  for (int i = 0; i < threads; ++i) {
    getcontext(&s.ctx[i]);
    s.ctx[i].uc_stack.ss_sp = s.stacks[i].data();
    s.ctx[i].uc_stack.ss_size = kStack;
    s.ctx[i].uc_link = nullptr;
    makecontext(&s.ctx[i], trampoline, 0);
  }
}

// Runs the current block until all its threads finished (true), or until it can only go on once another block
// moved: a thread spins (__nanosleep) and every other one waits at a barrier or spins too (false: parked).
inline bool drive_block() {
  State& s = st();
  const int threads = s.n;
  for (int& v : s.status) if (v == 4) v = 0;
  for (;;) {
    bool any = false;
    for (int i = 0; i < threads; ++i) {
      if (s.status[i] != 0) continue;
      any = true;
      s.cur = i;
      s.thread = dim3(static_cast<unsigned>(i) % s.block_dim.x, static_cast<unsigned>(i) / s.block_dim.x, 0);
#ifdef EMU_ASAN
      void* fake = nullptr;
      __sanitizer_start_switch_fiber(&fake, s.stacks[i].data(), kStack);
#endif
      swapcontext(&s.sched, &s.ctx[i]);
#ifdef EMU_ASAN
      __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    }
    int waiting = 0, done = 0, spinning = 0;
    for (int v : s.status) { waiting += v == 1; done += v == 2; spinning += v == 4; }
    if (done == threads) return true;
    // Warps whose lanes all wait at a shuffle go on (a lane at __syncthreads or finished meanwhile: divergence).
    bool released = false;
    for (int w = 0; w < threads; w += 32) {
      int at = 0, other = 0;
      for (int i = w; i < w + 32 && i < threads; ++i) { at += s.status[i] == 3; other += s.status[i] != 3; }
      if (at == 0) continue;
      if (other != 0) {
        std::fprintf(stderr, "emu: warp shuffle reached by %d lanes of warp %d, %d lanes elsewhere\n", at, w / 32, other);
        std::abort();
      }
      for (int i = w; i < w + 32 && i < threads; ++i) s.status[i] = 0;
      released = true;
    }
    if (released) continue;
    if (spinning != 0) return false;
    if (!any && waiting == 0) return true;
    // CUDA requires every live thread of the block at the barrier; a thread that exited early while others wait
    // is a divergent barrier (undefined on the GPU): report it instead of guessing.
    if (done != 0 && waiting != 0) {
      std::fprintf(stderr, "emu: __syncthreads reached by %d threads while %d have exited\n", waiting, done);
      std::abort();
    }
    for (int& v : s.status) if (v == 1) v = 0;
  }
}

// Runs body(arg) as one block of `threads` fibers.
inline void run_block(int threads, void (*body)(void*), void* arg) {
  start_block(threads, body, arg);
  if (!drive_block()) {
    std::fprintf(stderr, "emu: a thread spins on a flag that no other block can set (not a cooperative launch)\n");
    std::abort();
  }
}

// The fiber state of one block of a cooperative launch while another block runs.
struct Parked {
  dim3 block;
  int n = 0;
  std::vector<ucontext_t> ctx;
  std::vector<std::vector<char>> stacks;
  std::vector<int> status;
  std::vector<std::array<uint64_t, 32>> shfl[2];
  std::vector<unsigned> shfl_seq;
  std::vector<std::vector<State::Copy>> open_group;
  std::vector<std::vector<std::vector<State::Copy>>> committed;
  std::vector<char> local;
  bool done = false;
};
inline void swap_in(Parked& p) {
  State& s = st();
  std::swap(s.block, p.block);
  std::swap(s.n, p.n);
  s.ctx.swap(p.ctx);  // swaps the buffers: a saved context never moves (it points into itself)
  s.stacks.swap(p.stacks);
  s.status.swap(p.status);
  s.shfl[0].swap(p.shfl[0]);
  s.shfl[1].swap(p.shfl[1]);
  s.shfl_seq.swap(p.shfl_seq);
  s.open_group.swap(p.open_group);
  s.committed.swap(p.committed);
  s.local.swap(p.local);
}

// A cooperative launch: every block is resident, so a block may wait (spin with __nanosleep) for the others, as at
// a grid barrier. Blocks take turns: one runs until it finishes or parks, then the next unfinished one; a parked
// block resumes on its next turn. Within a turn the block runs alone, so a block's __shared__ statics are safe
// unless it parks between writing and reading them (the grid barrier of last_block.cuh does not).
template <typename... Args>
void launch_cooperative(dim3 grid, dim3 block, void (*kernel)(Args...), std::tuple<Args...>& args) {
  State& s = st();
  s.grid_dim = grid;
  s.block_dim = block;
  assert(block.z == 1 && grid.y == 1 && grid.z == 1);
  struct Ctx { void (*k)(Args...); std::tuple<Args...>* a; } c{kernel, &args};
  auto body = [](void* p) {
    Ctx* c = static_cast<Ctx*>(p);
    std::apply(c->k, *c->a);
  };
  // Fiber stacks per block index, kept from one launch to the next (allocating them is most of a launch's cost).
  static std::vector<std::vector<std::vector<char>>> stack_pool;
  if (stack_pool.size() < grid.x) stack_pool.resize(grid.x);
  std::vector<Parked> blocks(grid.x);
  for (unsigned x = 0; x < grid.x; ++x) {
    swap_in(blocks[x]);
    s.stacks.swap(stack_pool[x]);
    start_block(static_cast<int>(block.x * block.y), body, &c);
    s.block = dim3(x, 0, 0);
    swap_in(blocks[x]);
  }
  for (int round = 0;; ++round) {
    if (round > 1000000) {
      std::fprintf(stderr, "emu: cooperative launch made no progress (a grid barrier missing an arrival?)\n");
      std::abort();
    }
    bool all = true;
    for (Parked& p : blocks) {
      if (p.done) continue;
      swap_in(p);
      p.done = drive_block();
      swap_in(p);
      all = all && p.done;
    }
    if (all) break;
  }
  for (unsigned x = 0; x < grid.x; ++x) stack_pool[x].swap(blocks[x].stacks);
}

// Per-block scratch of `bytes` bytes (zeroed on a block's first call), for a kernel's __shared__ array that must
// not be shared between the interleaved blocks of a cooperative launch.
inline void* block_local(size_t bytes) {
  State& s = st();
  if (s.local.size() < bytes) s.local.resize(bytes, 0);
  return s.local.data();
}

template <typename... Args>
struct Launch {
  dim3 grid, block;
  void (*kernel)(Args...);
  template <typename... Actual>
  void operator()(Actual&&... actual) {
    std::tuple<Args...> args(std::forward<Actual>(actual)...);
    State& s = st();
    s.grid_dim = grid;
    s.block_dim = block;
    assert(block.z == 1);
    for (unsigned z = 0; z < grid.z; ++z)
      for (unsigned y = 0; y < grid.y; ++y)
        for (unsigned x = 0; x < grid.x; ++x) {
          s.block = dim3(x, y, z);
          struct Ctx { void (*k)(Args...); std::tuple<Args...>* a; } c{kernel, &args};
          run_block(static_cast<int>(block.x * block.y), [](void* p) {
            Ctx* c = static_cast<Ctx*>(p);
            std::apply(c->k, *c->a);
          }, &c);
        }
  }
};

template <typename... Args>
Launch<Args...> launch(dim3 grid, dim3 block, void (*kernel)(Args...)) {
  return Launch<Args...>{grid, block, kernel};
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
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { auto old = *p; *p += v; return old; }
inline unsigned atomicExch(unsigned* p, unsigned v) { unsigned old = *p; *p = v; return old; }
// A spin-wait step: the thread yields (status 4) so that other blocks of a cooperative launch can run.
inline void __nanosleep(unsigned) {
  ::emu::st().status[::emu::st().cur] = 4;
  ::emu::switch_to_sched(false);
}
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
// __shfl_down_sync of a whole trivially copyable struct (emulation only: see last_block.cuh's warp_sum).
template <typename T> inline T emu_shfl_down_struct(const T& v, int d) {
  const int lane = ::emu::st().cur & 31;
  T r;
  ::emu::shuffle_bytes(&v, &r, sizeof(T), lane + d < 32 ? lane + d : lane);
  return r;
}
template <typename T> inline T __shfl_down_sync(unsigned mask, T v, int d) {
  assert(mask == 0xffffffffu);
  const int lane = ::emu::st().cur & 31;
  return emu_shfl(v, lane + d < 32 ? lane + d : lane);
}
template <typename T> inline T __shfl_xor_sync(unsigned mask, T v, int d) {
  assert(mask == 0xffffffffu);
  return emu_shfl(v, (::emu::st().cur & 31) ^ d);
}
template <typename T> inline T __ldg(const T* p) { return *p; }
template <typename T> inline T __ldcg(const T* p) { return *p; }
