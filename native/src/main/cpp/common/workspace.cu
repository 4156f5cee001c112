// Per-(device, stream) workspace of the last-block kernels (see workspace.h).
#include "workspace.h"

#ifndef SA2VA_NO_CUDA
#include <cuda_runtime.h>
#include <algorithm>
#include <map>
#include <mutex>
#include <utility>
#include "cuda_check.cuh"

namespace sa2va {
namespace {
struct Entry {
  char* ptr = nullptr;
  size_t counters = 0;       // capacity in counters
  size_t scratch = 0;        // capacity in bytes
};
size_t round256(size_t b) { return (b + 255) / 256 * 256; }
}  // namespace

StreamWorkspace stream_workspace(cudaStream_t stream, size_t n_counters, size_t scratch_bytes) {
  static std::mutex mu;
  static std::map<std::pair<int, cudaStream_t>, Entry> entries;
  int dev = 0;
  SA2VA_CUDA_CHECK(cudaGetDevice(&dev));
  std::lock_guard<std::mutex> lock(mu);
  Entry& e = entries[{dev, stream}];
  if (e.ptr == nullptr || n_counters > e.counters || scratch_bytes > e.scratch) {
    size_t nc = std::max<size_t>({n_counters, 2 * e.counters, 1024});
    size_t ns = std::max<size_t>({scratch_bytes, 2 * e.scratch, size_t(1) << 16});
    if (e.ptr) {
      // Launches already queued on this stream may still use the old buffer.
      SA2VA_CUDA_CHECK(cudaStreamSynchronize(stream));
      SA2VA_CUDA_CHECK(cudaFree(e.ptr));
      e.ptr = nullptr;
    }
    char* p = nullptr;
    SA2VA_CUDA_CHECK(cudaMalloc(&p, round256(nc * sizeof(unsigned)) + round256(ns)));
    SA2VA_CUDA_CHECK(cudaMemsetAsync(p, 0, round256(nc * sizeof(unsigned)), stream));
    e.ptr = p;
    e.counters = nc;
    e.scratch = ns;
  }
  return StreamWorkspace{reinterpret_cast<unsigned*>(e.ptr), e.ptr + round256(e.counters * sizeof(unsigned))};
}

}  // namespace sa2va
#endif
