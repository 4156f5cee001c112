package dev.sa2va.kernels;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Const;
import org.bytedeco.javacpp.annotation.Namespace;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * LoRA forward/backward/merge kernels ({@code native/src/main/cpp/lora/lora.h}, where the math is). Raw pointers:
 * callers validate shapes, dtypes and devices first (see {@code dev.sa2va.lora.LoraOps} in core). The 64-bit
 * seed and offset are passed as Java longs and reinterpreted as unsigned.
 */
@Properties(inherit = NativeLibrary.class, value = @Platform(include = "lora/lora.h", library = "jnisa2va"))
@Namespace("sa2va")
public class LoraKernels {
    static {
        Loader.load();
    }

    public static native void lora_forward_cpu(@Const Pointer x, int dtype, @Cast("int64_t") long rows,
                                               @Cast("int64_t") long dIn, @Cast("int64_t") long dOut,
                                               @Cast("int64_t") long rank, @Const Pointer loraA, @Const Pointer loraB,
                                               @Const Pointer bias, float scale,
                                               @Cast("const int64_t*") Pointer adapterIndex,
                                               @Cast("int64_t") long nAdapters,
                                               @Cast("const float*") Pointer adapterScales, float dropoutP,
                                               @Cast("uint64_t") long seed, @Cast("uint64_t") long offset, Pointer xs,
                                               Pointer y);

    public static native void lora_forward_cuda(@Const Pointer x, int dtype, @Cast("int64_t") long rows,
                                                @Cast("int64_t") long dIn, @Cast("int64_t") long dOut,
                                                @Cast("int64_t") long rank, @Const Pointer loraA, @Const Pointer loraB,
                                                @Const Pointer bias, float scale,
                                                @Cast("const int64_t*") Pointer adapterIndex,
                                                @Cast("int64_t") long nAdapters,
                                                @Cast("const float*") Pointer adapterScales, float dropoutP,
                                                @Cast("uint64_t") long seed, @Cast("uint64_t") long offset, Pointer xs,
                                                Pointer y, @Cast("cudaStream_t") Pointer stream);

    public static native void lora_backward_cpu(@Const Pointer x, @Const Pointer dy, @Const Pointer xs, int dtype,
                                                @Cast("int64_t") long rows, @Cast("int64_t") long dIn,
                                                @Cast("int64_t") long dOut, @Cast("int64_t") long rank,
                                                @Const Pointer loraA, @Const Pointer loraB, float scale, float dropoutP,
                                                @Cast("uint64_t") long seed, @Cast("uint64_t") long offset,
                                                Pointer gradA, Pointer gradB, Pointer dx);

    public static native void lora_backward_cuda(@Const Pointer x, @Const Pointer dy, @Const Pointer xs, int dtype,
                                                 @Cast("int64_t") long rows, @Cast("int64_t") long dIn,
                                                 @Cast("int64_t") long dOut, @Cast("int64_t") long rank,
                                                 @Const Pointer loraA, @Const Pointer loraB, float scale,
                                                 float dropoutP, @Cast("uint64_t") long seed,
                                                 @Cast("uint64_t") long offset, @Cast("float*") Pointer gradA,
                                                 @Cast("float*") Pointer gradB, Pointer dx,
                                                 @Cast("cudaStream_t") Pointer stream);

    public static native void lora_merge_cpu(Pointer w, int dtype, @Cast("int64_t") long dOut,
                                             @Cast("int64_t") long dIn, @Cast("int64_t") long rank,
                                             @Const Pointer loraA, @Const Pointer loraB, int adapterDtype, float scale);

    public static native void lora_merge_cuda(Pointer w, int dtype, @Cast("int64_t") long dOut,
                                              @Cast("int64_t") long dIn, @Cast("int64_t") long rank,
                                              @Cast("const float*") Pointer loraA, @Cast("const float*") Pointer loraB,
                                              float scale, @Cast("cudaStream_t") Pointer stream);

    /** Programmatic dependent launch on sm_90+: 1 on, 0 off, -1 default (on unless SA2VA_LORA_PDL=0). */
    public static native void lora_set_pdl(int mode);

    /**
     * Which kernels run the products the dropout touches, for A/B measurements (lora.h): 0 default, always cuBLAS
     * (measured faster on the H200); 1 ours with the mask fused where there is a dropout (16-bit, r <= 128), 2 also xs
     * and dA by ours at p = 0, 3 as 1 but dx's term by cuBLAS + mask pass, -1 back to the default (SA2VA_LORA_FUSED or
     * 0).
     */
    public static native void lora_set_fused(int mode);

    public static native void lora_dropout_mask_cpu(@Cast("int64_t") long n, float dropoutP,
                                                    @Cast("uint64_t") long seed, @Cast("uint64_t") long offset,
                                                    @Cast("uint8_t*") Pointer keep);
}
