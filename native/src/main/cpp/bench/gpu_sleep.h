// Benchmark helper: a kernel that keeps the GPU busy for a given time.
//
// Timing device work from the host with CUDA events is only exact when the GPU never waits for the host between
// the two events. Enqueuing gpu_sleep first gives the host that head start: everything enqueued while it runs is
// executed back to back afterwards, so (end - start) / n is device time, not host launch overhead. Python's
// triton.testing.do_bench gets the same effect from its L2-flush kernel.
#pragma once
#include "../common/sa2va_api.h"

namespace sa2va {

// One thread spins on the GPU's global nanosecond timer for `nanoseconds` (at most 1 s).
void gpu_sleep_cuda(int64_t nanoseconds, cudaStream_t stream);

}  // namespace sa2va
