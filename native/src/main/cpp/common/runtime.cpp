// Library-wide runtime facts (threads; whether CUDA was compiled in lives in runtime_cuda.cu).
#include <atomic>
#include <cstdlib>
#include <thread>
#include <algorithm>
#include "sa2va_api.h"

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

}  // namespace sa2va
