// Library-wide runtime facts (threads; whether CUDA was compiled in lives in runtime_cuda.cu).
#include <atomic>
#include <cstdlib>
#include <thread>
#include <algorithm>
#include "sa2va_api.h"
#include "philox.h"

namespace sa2va {

static std::atomic<int> g_threads{0};

int cpu_threads() {
  int n = g_threads.load();
  if (n > 0) return n;
  const char* env = std::getenv("SA2VA_NUM_THREADS");
  if (env && std::atoi(env) > 0) n = std::atoi(env);
  else n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  g_threads.store(n);
  return n;
}

void set_cpu_threads(int n) { g_threads.store(n > 0 ? n : 0); }

void philox_block(const uint32_t* ctr, uint32_t k0, uint32_t k1, uint32_t* out) {
  Philox4 r = philox4x32(Philox4{{ctr[0], ctr[1], ctr[2], ctr[3]}}, k0, k1);
  for (int i = 0; i < 4; ++i) out[i] = r.v[i];
}

}  // namespace sa2va
