package dev.sa2va.eval;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import org.bytedeco.pytorch.cuda.CUDAAllocator;
import org.bytedeco.pytorch.cuda.DeviceStats;
import org.bytedeco.pytorch.global.torch.ScalarType;
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
        DeviceStats s = allocator(device).getDeviceStats((byte) device);
        return s.allocated_bytes().peak();
    }

    /** Peak bytes reserved by the caching allocator ({@code max_memory_reserved}); -1 without CUDA. */
    public static long peakReservedBytes(int device) {
        if (!Devices.torchCudaAvailable()) {
            return -1;
        }
        DeviceStats s = allocator(device).getDeviceStats((byte) device);
        return s.reserved_bytes().peak();
    }

    /** Number of allocations that failed with out-of-memory since start ({@code num_ooms}); -1 without CUDA. */
    public static long outOfMemoryCount(int device) {
        if (!Devices.torchCudaAvailable()) {
            return -1;
        }
        return allocator(device).getDeviceStats((byte) device).num_ooms();
    }

    /**
     * Caps what torch's caching allocator may hold on {@code device} at {@code bytes} (as
     * {@code torch.cuda.set_per_process_memory_fraction}), e.g. to check that an evaluation fits a 24 GB card on a
     * larger one. Allocations beyond the cap fail with "CUDA out of memory".
     *
     * @return the fraction of the device's memory that was set
     */
    public static double capBytes(int device, long bytes) {
        if (!Devices.torchCudaAvailable()) {
            throw new UnsupportedOperationException("no CUDA device visible to libtorch: cannot cap its memory");
        }
        if (bytes <= 0) {
            throw new IllegalArgumentException("bytes must be > 0, got " + bytes);
        }
        long total = allocator(device).getMemoryInfo((byte) device).second();
        double f = Math.min(1.0, (double) bytes / total);
        allocator(device).setMemoryFraction(f, (byte) device);
        return f;
    }

    /** Total memory of {@code device} in bytes; -1 without CUDA. */
    public static long totalBytes(int device) {
        if (!Devices.torchCudaAvailable()) {
            return -1;
        }
        return allocator(device).getMemoryInfo((byte) device).second();
    }

    private static final boolean[] READY = new boolean[64];

    /**
     * The caching allocator, set up for {@code device}: libtorch initialises it lazily with the first CUDA tensor,
     * and its per-device calls (stats, fraction) reject a device it has not set up yet.
     */
    private static synchronized CUDAAllocator allocator(int device) {
        if (device < 0 || device >= READY.length) {
            throw new IllegalArgumentException("device index " + device + " out of range");
        }
        if (!READY[device]) {
            Torch.empty(ScalarType.Byte, Devices.cuda(device), 1); // freed by its scope or the GC
            READY[device] = true;
        }
        return torch_cuda.getAllocator();
    }

    public static void resetPeaks(int device) {
        if (Devices.torchCudaAvailable()) {
            allocator(device).resetPeakStats((byte) device);
        }
    }
}
