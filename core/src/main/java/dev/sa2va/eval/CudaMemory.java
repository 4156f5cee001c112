package dev.sa2va.eval;

import dev.sa2va.core.Devices;
import org.bytedeco.pytorch.cuda.DeviceStats;
import org.bytedeco.pytorch.global.torch_cuda;

/**
 * torch's CUDA caching allocator: free its cache, read and reset its peak statistics. Every method is a no-op (or
 * returns -1) without a CUDA device, and {@code torch_cuda} is only touched when libtorch sees one, since loading
 * it on a CPU-only class path fails.
 */
public final class CudaMemory {
    private CudaMemory() {
    }

    /** Returns cached, unused blocks to the driver ({@code torch.cuda.empty_cache()}). */
    public static void releaseCachedMemory() {
        if (Devices.torchCudaAvailable()) {
            torch_cuda.getAllocator().emptyCache();
        }
    }

    /** Peak bytes held by tensors on {@code device} since the last reset ({@code max_memory_allocated}); -1 without CUDA. */
    public static long peakAllocatedBytes(int device) {
        if (!Devices.torchCudaAvailable()) {
            return -1;
        }
        DeviceStats s = torch_cuda.getAllocator().getDeviceStats((byte) device);
        return s.allocated_bytes().peak();
    }

    /** Peak bytes reserved by the caching allocator ({@code max_memory_reserved}); -1 without CUDA. */
    public static long peakReservedBytes(int device) {
        if (!Devices.torchCudaAvailable()) {
            return -1;
        }
        DeviceStats s = torch_cuda.getAllocator().getDeviceStats((byte) device);
        return s.reserved_bytes().peak();
    }

    /** Number of allocations that failed with out-of-memory since start ({@code num_ooms}); -1 without CUDA. */
    public static long outOfMemoryCount(int device) {
        if (!Devices.torchCudaAvailable()) {
            return -1;
        }
        return torch_cuda.getAllocator().getDeviceStats((byte) device).num_ooms();
    }

    public static void resetPeaks(int device) {
        if (Devices.torchCudaAvailable()) {
            torch_cuda.getAllocator().resetPeakStats((byte) device);
        }
    }
}
