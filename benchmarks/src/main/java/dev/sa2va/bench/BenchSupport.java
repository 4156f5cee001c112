package dev.sa2va.bench;

import dev.sa2va.core.CudaStreams;
import dev.sa2va.core.Devices;
import dev.sa2va.kernels.BenchKernels;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.cuda.CUDAEvent;
import org.bytedeco.pytorch.cuda.CUDAStream;
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

    /** One call of the code under a {@link DeviceTimer}. */
    interface Call {
        void run();
    }

    /**
     * Device time per call, without the host: a GPU sleep kernel gives the host a head start, then CUDA events
     * bracket {@code reps} queued calls (median over {@code repeats}). The sleep is 1.5x the host time of enqueuing
     * the calls (measured once) plus 0.5 ms, so the GPU never waits for the host inside the timed span. Also the
     * host time per call of those enqueues (the GPU is far ahead: the Java side, JNI and the launch).
     */
    static final class DeviceTimer {
        private final CUDAStream stream;
        private final Pointer rawStream;
        private final int reps;
        private final int repeats;

        /** On device 0's current torch stream. */
        DeviceTimer(int reps, int repeats) {
            this.stream = torch_cuda.getCurrentCUDAStream((byte) 0);
            this.rawStream = CudaStreams.prepareLaunch(0, "gpu_sleep_cuda");
            this.reps = reps;
            this.repeats = repeats;
        }

        /** {median device µs, median host µs} per call. */
        double[] micros(Call call) {
            for (int i = 0; i < 3; i++) {
                try (PointerScope s = new PointerScope()) {
                    call.run();
                }
            }
            torch_cuda.device_synchronize();
            long t0 = System.nanoTime();
            try (PointerScope s = new PointerScope()) {
                for (int i = 0; i < reps; i++) {
                    call.run();
                }
            }
            long hostNanos = System.nanoTime() - t0;
            torch_cuda.device_synchronize();
            long sleepNanos = Math.min(900_000_000L, hostNanos * 3 / 2 + 500_000);
            List<Double> per = new ArrayList<>();
            List<Double> host = new ArrayList<>();
            for (int r = 0; r < repeats; r++) {
                try (PointerScope s = new PointerScope()) {
                    CUDAEvent start = new CUDAEvent(0), end = new CUDAEvent(0);  // flags 0: timing enabled
                    BenchKernels.gpu_sleep_cuda(sleepNanos, rawStream);
                    start.record(stream);
                    long h0 = System.nanoTime();
                    for (int i = 0; i < reps; i++) {
                        call.run();
                    }
                    host.add((System.nanoTime() - h0) / 1000.0 / reps);
                    end.record(stream);
                    end.synchronize();
                    per.add(1000.0 * start.elapsed_time(end) / reps);
                }
            }
            per.sort(Double::compare);
            host.sort(Double::compare);
            return new double[] {per.get(per.size() / 2), host.get(host.size() / 2)};
        }
    }
}
