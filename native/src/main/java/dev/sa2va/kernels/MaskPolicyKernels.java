package dev.sa2va.kernels;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Const;
import org.bytedeco.javacpp.annotation.Namespace;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * Bernoulli mask policy: sampling with Philox, log-probabilities and their gradient
 * ({@code native/src/main/cpp/masks/mask_policy.h}). Raw pointers: see {@code dev.sa2va.rl.MaskPolicy} in core.
 */
@Properties(inherit = NativeLibrary.class, value = @Platform(include = "masks/mask_policy.h", library = "jnisa2va"))
@Namespace("sa2va")
public class MaskPolicyKernels {
    static {
        Loader.load();
    }

    public static native void mask_sample_cpu(@Const Pointer logits, int dtype, @Cast("int64_t") long n,
                                              @Cast("int64_t") long p, float temperature, @Cast("uint64_t") long seed,
                                              @Cast("uint64_t") long offset, int normalize, @Const Pointer target,
                                              int targetKind, @Const Pointer roi, int roiKind, @Cast("int64_t") long group,
                                              @Cast("const float*") float[] spec, @Cast("uint8_t*") Pointer bits,
                                              @Cast("float*") Pointer policy, @Cast("double*") Pointer stats,
                                              @Cast("float*") Pointer scores);

    public static native void mask_sample_cuda(@Const Pointer logits, int dtype, @Cast("int64_t") long n,
                                               @Cast("int64_t") long p, float temperature, @Cast("uint64_t") long seed,
                                               @Cast("uint64_t") long offset, int normalize, @Const Pointer target,
                                               int targetKind, @Const Pointer roi, int roiKind,
                                               @Cast("int64_t") long group, @Cast("const float*") float[] spec,
                                               @Cast("uint8_t*") Pointer bits, @Cast("float*") Pointer policy,
                                               @Cast("double*") Pointer stats, @Cast("float*") Pointer scores,
                                               @Cast("cudaStream_t") Pointer stream);

    public static native void mask_logprob_cpu(@Const Pointer logits, int dtype, @Cast("const uint8_t*") Pointer bits,
                                               @Cast("int64_t") long n, @Cast("int64_t") long p, float temperature,
                                               int normalize, @Cast("float*") Pointer policy,
                                               @Cast("float*") Pointer perPixel);

    public static native void mask_logprob_cuda(@Const Pointer logits, int dtype, @Cast("const uint8_t*") Pointer bits,
                                                @Cast("int64_t") long n, @Cast("int64_t") long p, float temperature,
                                                int normalize, @Cast("float*") Pointer policy,
                                                @Cast("float*") Pointer perPixel, @Cast("cudaStream_t") Pointer stream);

    public static native void mask_policy_grad_cpu(@Const Pointer logits, int dtype, @Cast("const uint8_t*") Pointer bits,
                                                   @Cast("int64_t") long n, @Cast("int64_t") long p, float temperature,
                                                   int normalize, @Cast("const float*") Pointer g, int gPerPixel,
                                                   float h, Pointer grad);

    public static native void mask_policy_grad_cuda(@Const Pointer logits, int dtype,
                                                    @Cast("const uint8_t*") Pointer bits, @Cast("int64_t") long n,
                                                    @Cast("int64_t") long p, float temperature, int normalize,
                                                    @Cast("const float*") Pointer g, int gPerPixel, float h, Pointer grad,
                                                    @Cast("cudaStream_t") Pointer stream);
}
