package dev.sa2va.kernels;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Namespace;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * The native library itself: one JNI library ({@code jnisa2va}) linked against {@code libsa2va_native.so}
 * (our kernels). Every kernel binding class inherits these properties, so all of them end up in the same
 * JNI library. Also answers what the library was built with.
 */
@Properties(value = @Platform(
        value = "linux-x86_64",
        compiler = "cpp17",
        include = {"common/sa2va_api.h"},
        link = "sa2va_native",
        preload = "sa2va_native",
        library = "jnisa2va"))
@Namespace("sa2va")
public class NativeLibrary {
    static {
        Loader.load();
    }

    /** Ensures the native library is loaded (throws UnsatisfiedLinkError with the loader's reason if not). */
    public static void load() {
        Loader.load(NativeLibrary.class);
    }

    /** True when the library was compiled with nvcc, i.e. the CUDA kernels exist. */
    @Cast("bool") public static native boolean built_with_cuda();

    /** CUDA runtime version linked in (e.g. 13000), 0 without CUDA. */
    public static native int cuda_runtime_version();

    /** CUDA devices visible to our (statically linked) runtime; 0 without driver or device. */
    public static native int cuda_device_count();

    /** Makes {@code device} current in the library's own CUDA runtime (separate from libtorch's). */
    public static native void cuda_set_device(int device);

    /**
     * Programmatic dependent launch for the mask-pass and GAE kernels (sm_90+): 1 on, 0 off, -1 back to the default
     * (SA2VA_RL_PDL, else on). For A/B measurements; results are the same either way.
     */
    public static native void rl_set_pdl(int mode);

    /** One Philox4x32-10 block (native/src/main/cpp/common/philox.h), for known-answer tests. */
    public static native void philox_block(@Cast("const uint32_t*") int[] ctr, @Cast("uint32_t") int k0,
                                           @Cast("uint32_t") int k1, @Cast("uint32_t*") int[] out);

    /** Threads used by the C++ CPU kernels. */
    public static native int cpu_threads();

    /** Sets the threads of the C++ CPU kernels (0 = back to SA2VA_NUM_THREADS / hardware concurrency). */
    public static native void set_cpu_threads(int n);
}
