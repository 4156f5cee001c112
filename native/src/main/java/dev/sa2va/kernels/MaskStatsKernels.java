package dev.sa2va.kernels;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Const;
import org.bytedeco.javacpp.annotation.Namespace;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * Per-sample confusion counts {TP, FP, FN, TN} of thresholded logits against a uint8 target
 * ({@code native/src/main/cpp/masks/mask_stats.h}). Raw pointers: callers validate shapes and dtypes
 * (see {@code dev.sa2va.metrics.MaskMetrics} in core).
 */
@Properties(inherit = NativeLibrary.class, value = @Platform(include = "masks/mask_stats.h", library = "jnisa2va"))
@Namespace("sa2va")
public class MaskStatsKernels {
    static {
        Loader.load();
    }

    public static native void mask_stats_cpu(@Const Pointer logits, int dtype, @Cast("const uint8_t*") Pointer targets,
                                             @Cast("int64_t") long n, @Cast("int64_t") long p, float threshold,
                                             @Cast("int64_t*") Pointer out);

    public static native void mask_stats_cuda(@Const Pointer logits, int dtype, @Cast("const uint8_t*") Pointer targets,
                                              @Cast("int64_t") long n, @Cast("int64_t") long p, float threshold,
                                              @Cast("int64_t*") Pointer out, @Cast("cudaStream_t") Pointer stream);
}
