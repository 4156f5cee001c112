package dev.sa2va.kernels;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Namespace;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/** Helpers for timing GPU work ({@code native/src/main/cpp/bench/gpu_sleep.h}). */
@Properties(inherit = NativeLibrary.class, value = @Platform(include = "bench/gpu_sleep.h", library = "jnisa2va"))
@Namespace("sa2va")
public class BenchKernels {
    static {
        Loader.load();
    }

    /** Keeps the GPU busy for {@code nanoseconds} on {@code stream} (a head start for the host, see the header). */
    public static native void gpu_sleep_cuda(@Cast("int64_t") long nanoseconds, @Cast("cudaStream_t") Pointer stream);
}
