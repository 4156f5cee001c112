package dev.sa2va.kernels;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Const;
import org.bytedeco.javacpp.annotation.Namespace;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * Mask statistics, scores, rewards and supervised losses ({@code native/src/main/cpp/masks/mask_stats.h}, constants
 * in {@code mask_pass.h} mirrored by {@link MaskKind}). Raw pointers: callers validate shapes and dtypes (see
 * {@code dev.sa2va.metrics.MaskMetrics} and {@code dev.sa2va.losses.MaskLosses} in core).
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

    /**
     * Full waves of resident blocks the CUDA mask-pass kernels launch, for A/B measurements (mask_stats.h): 1..16,
     * anything else back to the default (SA2VA_MASK_WAVES, else 1).
     */
    public static native void mask_set_waves(int waves);

    public static native void mask_scores_cpu(@Const Pointer pred, int predDtype, int predKind, @Const Pointer target,
                                              int targetKind, @Const Pointer roi, int roiKind, @Cast("int64_t") long n,
                                              @Cast("int64_t") long p, @Cast("int64_t") long group, float threshold,
                                              @Cast("const float*") float[] spec, @Cast("double*") Pointer stats,
                                              @Cast("float*") Pointer scores, @Cast("int64_t*") Pointer confusion,
                                              @Cast("float*") Pointer loss, @Cast("float*") Pointer coef);

    public static native void mask_scores_cuda(@Const Pointer pred, int predDtype, int predKind, @Const Pointer target,
                                               int targetKind, @Const Pointer roi, int roiKind, @Cast("int64_t") long n,
                                               @Cast("int64_t") long p, @Cast("int64_t") long group, float threshold,
                                               @Cast("const float*") float[] spec, @Cast("double*") Pointer stats,
                                               @Cast("float*") Pointer scores, @Cast("int64_t*") Pointer confusion,
                                               @Cast("float*") Pointer loss, @Cast("float*") Pointer coef,
                                               @Cast("cudaStream_t") Pointer stream);

    public static native void mask_loss_grad_cpu(@Const Pointer logits, int dtype, @Const Pointer target, int targetKind,
                                                 @Const Pointer roi, int roiKind, @Cast("int64_t") long n,
                                                 @Cast("int64_t") long p, @Cast("int64_t") long group,
                                                 @Cast("const float*") Pointer coef, float scale, float posWeight,
                                                 Pointer grad);

    public static native void mask_loss_grad_cuda(@Const Pointer logits, int dtype, @Const Pointer target, int targetKind,
                                                  @Const Pointer roi, int roiKind, @Cast("int64_t") long n,
                                                  @Cast("int64_t") long p, @Cast("int64_t") long group,
                                                  @Cast("const float*") Pointer coef, float scale, float posWeight,
                                                  Pointer grad, @Cast("cudaStream_t") Pointer stream);

    public static native void mask_pack_cpu(@Cast("const uint8_t*") Pointer src, @Cast("int64_t") long n,
                                            @Cast("int64_t") long p, @Cast("uint8_t*") Pointer out,
                                            @Cast("int64_t*") Pointer invalid);

    public static native void mask_pack_cuda(@Cast("const uint8_t*") Pointer src, @Cast("int64_t") long n,
                                             @Cast("int64_t") long p, @Cast("uint8_t*") Pointer out,
                                             @Cast("int64_t*") Pointer invalid, @Cast("cudaStream_t") Pointer stream);

    public static native void mask_unpack_cpu(@Cast("const uint8_t*") Pointer bits, @Cast("int64_t") long n,
                                              @Cast("int64_t") long p, @Cast("uint8_t*") Pointer out);

    public static native void mask_unpack_cuda(@Cast("const uint8_t*") Pointer bits, @Cast("int64_t") long n,
                                               @Cast("int64_t") long p, @Cast("uint8_t*") Pointer out,
                                               @Cast("cudaStream_t") Pointer stream);
}
