package dev.sa2va.bench;

import dev.sa2va.core.Devices;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.bytedeco.pytorch.global.torch_cuda;

/** Shared bits of the benchmarks: device and dtype parsing, GPU synchronisation. */
final class BenchSupport {
    private BenchSupport() {
    }

    static Device cudaOrFail() {
        if (!Devices.cudaAvailable()) {
            throw new IllegalStateException("CUDA benchmark: no CUDA device visible to libtorch, or the native library "
                    + "was built without CUDA");
        }
        return Devices.cuda(0);
    }

    static ScalarType dtype(String name) {
        switch (name) {
            case "f32": return ScalarType.Float;
            case "f16": return ScalarType.Half;
            case "bf16": return ScalarType.BFloat16;
            default: throw new IllegalArgumentException("dtype " + name);
        }
    }

    static int elementSize(ScalarType st) {
        return st == ScalarType.Float ? 4 : 2;
    }

    /** Waits for all queued GPU work: timings of asynchronous launches must include their execution. */
    static void sync() {
        torch_cuda.device_synchronize();
    }

    /**
     * The yardstick of every memory-bound benchmark: {@code reps} device-to-device copies, one synchronisation
     * (bytes moved = 2x the tensor size per copy: read + write).
     */
    static void copies(org.bytedeco.pytorch.Tensor dst, org.bytedeco.pytorch.Tensor src, int reps) {
        for (int i = 0; i < reps; i++) {
            dst.copy_(src);
        }
        sync();
    }

    /** "8x262144" -> {8, 262144}. */
    static long[] shape(String s) {
        String[] p = s.split("x");
        long[] r = new long[p.length];
        for (int i = 0; i < p.length; i++) {
            r[i] = Long.parseLong(p[i]);
        }
        return r;
    }
}
