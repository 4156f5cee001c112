// Device scratch for kernels that finish with a "last block" epilogue (one launch, no memset, no second
// kernel): every block writes its partial result to `scratch`, bumps a counter, and the block that arrives
// last reduces the partials in a fixed order (deterministic) and resets the counter to zero. Counters are
// therefore zero whenever a launch starts, which is what lets us skip the memset launch per call.
//
// One workspace per (device, stream): launches on one stream are ordered, so they never share a counter
// concurrently. The memory is owned by the library for the life of the process (it only grows, and is
// small: counters plus one partial record per block). Not usable while capturing a CUDA graph if it has to
// grow (cudaMalloc is not capturable); call once before capturing.
#pragma once
#include <cstddef>
#include "sa2va_api.h"

namespace sa2va {

struct StreamWorkspace {
  unsigned* counters;  // n_counters zeros
  void* scratch;       // scratch_bytes, 256-byte aligned, contents undefined
};

// For the current device of this thread (see cuda_set_device) and `stream`.
StreamWorkspace stream_workspace(cudaStream_t stream, size_t n_counters, size_t scratch_bytes);

}  // namespace sa2va
