package dev.sa2va.lora;

import dev.sa2va.core.Devices;
import dev.sa2va.core.KernelCall;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.kernels.LoraKernels;
import java.util.Arrays;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * LoRA on torch tensors: {@code y = x·Wᵀ + bias + s·(drop(x)·Aᵀ)·Bᵀ} with W frozen, and its backward (dX, dA, dB).
 * Our kernels ({@code native/src/main/cpp/lora/lora.h}) compute everything low-rank and write it into the output
 * buffer; libtorch (cuBLAS on CUDA) then adds the base GEMM onto that buffer ({@code addmm_}, beta = 1), so the LoRA
 * branch costs one extra write and read of the output instead of PEFT's separate dropout copy, two GEMMs, scaling
 * and add.
 *
 * <p>Stateless: {@link LoraLinear} keeps the weights, master copies, gradients and dropout offsets. Every argument
 * is validated first; errors are {@link IllegalArgumentException}s naming the argument. Shapes: {@code x} is
 * {@code [..., d_in]} (contiguous), {@code W} {@code [d_out, d_in]}, {@code A} {@code [r, d_in]}, {@code B}
 * {@code [d_out, r]}, all of one dtype (float32, float16, bfloat16; float64 on the CPU) and device. Gradients of A
 * and B are float32 (float64 for float64 layers) and accumulate. Calls on CUDA are asynchronous on torch's current
 * stream.
 *
 * <p>NaN and Inf in {@code x}, the weights or {@code dY} are not checked (a check would cost a device
 * synchronisation): they propagate to the rows and gradients they touch, through the base GEMM as in torch. A
 * dropped element does not contribute to the LoRA branch even when it is NaN, but it still reaches the output
 * through {@code x·Wᵀ}.
 */
public final class LoraOps {
    /** Largest rank the kernels support. */
    public static final int MAX_RANK = 256;

    private LoraOps() {
    }

    /** Output of a training forward: {@code y} and the activation {@code xs = s·drop(x)·Aᵀ} kept for backward. */
    public record Forward(Tensor y, Tensor xs) {
    }

    static final ScalarType[] LAYER_TYPES = {ScalarType.Float, ScalarType.Half, ScalarType.BFloat16, ScalarType.Double};

    /** Validates the frozen layer and the adapter; returns (d_in, d_out, rank). */
    static long[] checkLayer(Tensor weight, Tensor bias, Tensor a, Tensor b) {
        TensorCheck.of("weight", weight).cpuOrCuda().dtype(LAYER_TYPES).dims(2).nonEmpty().contiguous();
        ScalarType dt = Torch.dtype(weight);
        if (dt == ScalarType.Double && weight.is_cuda()) {
            throw new IllegalArgumentException("weight: float64 LoRA runs on the CPU only (use float32 on CUDA)");
        }
        long dOut = weight.size(0), dIn = weight.size(1);
        if (bias != null) {
            TensorCheck.of("bias", bias).dtype(dt).shape(dOut).sameDevice("weight", weight).contiguous();
        }
        TensorCheck.of("lora_A", a).dtype(dt).dims(2).sameDevice("weight", weight).contiguous();
        long rank = a.size(0);
        checkRank(rank, "lora_A");
        TensorCheck.of("lora_A", a).shape(rank, dIn);
        TensorCheck.of("lora_B", b).dtype(dt).shape(dOut, rank).sameDevice("weight", weight).contiguous();
        return new long[] {dIn, dOut, rank};
    }

    static void checkRank(long rank, String name) {
        if (rank < 1 || rank > MAX_RANK) {
            throw new IllegalArgumentException(name + (name.equals("rank") ? ": must be" : ": rank (first dimension) must be")
                    + " in [1, " + MAX_RANK + "], got " + rank);
        }
    }

    static void checkDropout(double p) {
        if (!(p >= 0 && p < 1)) {
            throw new IllegalArgumentException("dropout: p must be in [0, 1), got " + p);
        }
    }

    static void checkScale(double s, String name) {
        if (!Double.isFinite(s)) {
            throw new IllegalArgumentException(name + ": must be finite, got " + s);
        }
    }

    /** x against an already validated layer on device {@code dev}; returns the row count. */
    static long checkInput(String name, Tensor x, Tensor weight, int dev, long dIn) {
        TensorCheck c = TensorCheck.of(name, x).minDims(1).nonEmpty();
        ScalarType dt = Torch.dtype(weight);
        if (Torch.dtype(x) != dt) {
            throw new IllegalArgumentException(name + ": dtype " + TensorCheck.dtypeName(Torch.dtype(x))
                    + " does not match the layer's " + TensorCheck.dtypeName(dt));
        }
        sameDevice(name, x, dev);
        c.contiguous();
        long last = x.size(x.dim() - 1);
        if (last != dIn) {
            throw new IllegalArgumentException(name + ": last dimension is " + last + " but the layer has d_in = " + dIn
                    + " (shape " + TensorCheck.shapeString(x) + ")");
        }
        return x.numel() / dIn;
    }

    /** Same device as the layer's weight (device index from {@link KernelCall#deviceIndex}, -1 = CPU). */
    static void sameDevice(String name, Tensor t, int weightDevice) {
        KernelCall.requireDevice(name, t, "weight", weightDevice);
    }

    static long[] withLast(Tensor x, long last) {
        long[] s = TensorCheck.shapeOf(x);
        s[s.length - 1] = last;
        return s;
    }

    static Tensor as2d(Tensor t, long rows, long cols) {
        return t.dim() == 2 ? t : t.view(rows, cols);
    }

    /**
     * Keeps a native object alive beyond the caller's PointerScope: a layer's own tensors are created inside whatever
     * scope is open at that moment (often a training step's), and must not die with it. Undo with
     * {@link #release(Pointer)}.
     */
    static <P extends Pointer> P retain(P p) {
        if (p != null) {
            p.retainReference();
        }
        return p;
    }

    static void release(Pointer p) {
        if (p != null && !p.isNull()) {
            p.releaseReference();
        }
    }

    /**
     * Training or inference forward (see the class comment). {@code bias} may be null. {@code keepXs} returns the
     * activation backward needs; without it the kernels keep it in scratch memory.
     *
     * @param scale  s = alpha/r (alpha/sqrt(r) with rsLoRA)
     * @param p      dropout probability of the LoRA input, in [0, 1); 0 at inference
     * @param seed   dropout seed (Philox key)
     * @param offset dropout stream: a fresh value per training step, the same value again in backward
     */
    public static Forward forward(Tensor x, Tensor weight, Tensor bias, Tensor a, Tensor b, double scale, double p,
                                  long seed, long offset, boolean keepXs) {
        long[] d = checkLayer(weight, bias, a, b);
        checkScale(scale, "scale");
        checkDropout(p);
        int dev = KernelCall.deviceIndex(weight);
        long rows = checkInput("x", x, weight, dev, d[0]);
        return forwardChecked(x, weight, weight.t(), bias, a, b, scale, p, seed, offset, keepXs, rows, d[0], d[1], d[2],
                dev);
    }

    /** {@link #forward} after validation; {@code weightT} is {@code weight.t()} (cached by callers). */
    static Forward forwardChecked(Tensor x, Tensor weight, Tensor weightT, Tensor bias, Tensor a, Tensor b,
                                  double scale, double p, long seed, long offset, boolean keepXs, long rows, long dIn,
                                  long dOut, long rank, int dev) {
        ScalarType st = Torch.dtype(x);
        int dt = TensorCheck.nativeDType(st);
        Tensor y = KernelCall.empty(st, dev, withLast(x, dOut));
        Tensor xs = keepXs ? KernelCall.empty(st, dev, rows, rank) : null;
        Pointer biasPtr = bias == null ? null : bias.data_ptr();
        if (dev >= 0) {
            Pointer stream = KernelCall.stream(dev, "lora_forward_cuda");
            LoraKernels.lora_forward_cuda(x.data_ptr(), dt, rows, dIn, dOut, rank, a.data_ptr(), b.data_ptr(), biasPtr,
                    (float) scale, null, 0, null, (float) p, seed, offset, xs == null ? null : xs.data_ptr(),
                    y.data_ptr(), stream);
        } else {
            Tensor xsCpu = xs != null ? xs : KernelCall.empty(st, dev, rows, rank);
            LoraKernels.lora_forward_cpu(x.data_ptr(), dt, rows, dIn, dOut, rank, a.data_ptr(), b.data_ptr(), biasPtr,
                    (float) scale, null, 0, null, (float) p, seed, offset, xsCpu.data_ptr(), y.data_ptr());
            if (xs == null) {
                xsCpu.close();
            }
        }
        as2d(y, rows, dOut).addmm_(as2d(x, rows, dIn), weightT);
        return new Forward(y, xs);
    }

    /**
     * Backward with W frozen: returns {@code dX} and adds the gradients of A and B into {@code gradA} ([r, d_in]) and
     * {@code gradB} ([d_out, r]), float32 (float64 for float64 layers). {@code x}, {@code xs}, {@code a}, {@code b},
     * {@code scale}, {@code p}, {@code seed} and {@code offset} must be those of the forward.
     */
    public static Tensor backward(Tensor x, Tensor dy, Tensor xs, Tensor weight, Tensor a, Tensor b, double scale,
                                  double p, long seed, long offset, Tensor gradA, Tensor gradB) {
        long[] d = checkLayer(weight, null, a, b);
        checkScale(scale, "scale");
        checkDropout(p);
        int dev = KernelCall.deviceIndex(weight);
        long rows = checkInput("x", x, weight, dev, d[0]);
        checkBackwardArgs(x, dy, xs, weight, dev, gradA, gradB, rows, d[0], d[1], d[2]);
        return backwardChecked(x, dy, xs, weight, a, b, scale, p, seed, offset, gradA, gradB, rows, d[0], d[1], d[2],
                dev);
    }

    static ScalarType gradType(ScalarType layer) {
        return layer == ScalarType.Double ? ScalarType.Double : ScalarType.Float;
    }

    static void checkBackwardArgs(Tensor x, Tensor dy, Tensor xs, Tensor weight, int dev, Tensor gradA, Tensor gradB,
                                  long rows, long dIn, long dOut, long rank) {
        ScalarType dt = Torch.dtype(weight);
        TensorCheck.of("dY", dy).dtype(dt).contiguous();
        sameDevice("dY", dy, dev);
        long[] want = withLast(x, dOut);
        if (!Arrays.equals(TensorCheck.shapeOf(dy), want)) {
            throw new IllegalArgumentException("dY: shape " + TensorCheck.shapeString(dy) + " does not match the output shape "
                    + Arrays.toString(want));
        }
        TensorCheck.of("xs", xs).dtype(dt).shape(rows, rank).contiguous();
        sameDevice("xs", xs, dev);
        ScalarType gt = gradType(dt);
        TensorCheck.of("gradA", gradA).dtype(gt).shape(rank, dIn).contiguous();
        sameDevice("gradA", gradA, dev);
        TensorCheck.of("gradB", gradB).dtype(gt).shape(dOut, rank).contiguous();
        sameDevice("gradB", gradB, dev);
    }

    static Tensor backwardChecked(Tensor x, Tensor dy, Tensor xs, Tensor weight, Tensor a, Tensor b, double scale,
                                  double p, long seed, long offset, Tensor gradA, Tensor gradB, long rows, long dIn,
                                  long dOut, long rank, int dev) {
        ScalarType st = Torch.dtype(x);
        int dt = TensorCheck.nativeDType(st);
        Tensor dx = KernelCall.empty(st, dev, TensorCheck.shapeOf(x));
        if (dev >= 0) {
            Pointer stream = KernelCall.stream(dev, "lora_backward_cuda");
            LoraKernels.lora_backward_cuda(x.data_ptr(), dy.data_ptr(), xs.data_ptr(), dt, rows, dIn, dOut, rank,
                    a.data_ptr(), b.data_ptr(), (float) scale, (float) p, seed, offset, gradA.data_ptr(),
                    gradB.data_ptr(), dx.data_ptr(), stream);
        } else {
            LoraKernels.lora_backward_cpu(x.data_ptr(), dy.data_ptr(), xs.data_ptr(), dt, rows, dIn, dOut, rank,
                    a.data_ptr(), b.data_ptr(), (float) scale, (float) p, seed, offset, gradA.data_ptr(),
                    gradB.data_ptr(), dx.data_ptr());
        }
        as2d(dx, rows, dIn).addmm_(as2d(dy, rows, dOut), weight);
        return dx;
    }

    /**
     * Multi-adapter inference: row t of {@code x} uses adapter {@code index[t]} of the stacked {@code as}
     * ([n, r, d_in]) and {@code bs} ([n, d_out, r]) with scale {@code scales[index[t]]} (float32 [n]); index -1 means
     * the base layer alone. {@code index} is int64 (or int32) with x's leading shape, on x's device. Indexes are
     * range-checked, which synchronises with the device once per call.
     */
    public static Tensor forwardMulti(Tensor x, Tensor weight, Tensor bias, Tensor as, Tensor bs, Tensor scales,
                                      Tensor index) {
        TensorCheck.of("weight", weight).cpuOrCuda().dtype(LAYER_TYPES).dims(2).nonEmpty().contiguous();
        ScalarType dt = Torch.dtype(weight);
        long dOut = weight.size(0), dIn = weight.size(1);
        if (dt == ScalarType.Double && weight.is_cuda()) {
            throw new IllegalArgumentException("weight: float64 LoRA runs on the CPU only (use float32 on CUDA)");
        }
        if (bias != null) {
            TensorCheck.of("bias", bias).dtype(dt).shape(dOut).sameDevice("weight", weight).contiguous();
        }
        TensorCheck.of("lora_A", as).dtype(dt).dims(3).sameDevice("weight", weight).contiguous();
        long n = as.size(0), rank = as.size(1);
        checkRank(rank, "lora_A");
        if (n < 1) {
            throw new IllegalArgumentException("lora_A: no adapters (shape " + TensorCheck.shapeString(as) + ")");
        }
        TensorCheck.of("lora_A", as).shape(n, rank, dIn);
        TensorCheck.of("lora_B", bs).dtype(dt).shape(n, dOut, rank).sameDevice("weight", weight).contiguous();
        TensorCheck.of("scales", scales).dtype(ScalarType.Float).shape(n).sameDevice("weight", weight).contiguous();
        int dev = KernelCall.deviceIndex(weight);
        long rows = checkInput("x", x, weight, dev, dIn);
        TensorCheck.of("adapter_index", index).dtype(ScalarType.Long, ScalarType.Int).sameDevice("x", x);
        long[] lead = Arrays.copyOf(TensorCheck.shapeOf(x), (int) x.dim() - 1);
        if (!Arrays.equals(TensorCheck.shapeOf(index), lead) && !(index.dim() == 1 && index.size(0) == rows)) {
            throw new IllegalArgumentException("adapter_index: shape " + TensorCheck.shapeString(index)
                    + " does not match the rows of x " + Arrays.toString(lead));
        }
        Tensor idx = index.to(ScalarType.Long).contiguous();
        long lo = idx.min().item().toLong(), hi = idx.max().item().toLong();
        if (lo < -1 || hi >= n) {
            throw new IllegalArgumentException("adapter_index: values must be in [-1, " + (n - 1) + "] (-1 = no adapter), got ["
                    + lo + ", " + hi + "]");
        }
        int ndt = TensorCheck.nativeDType(dt);
        Tensor y = KernelCall.empty(dt, dev, withLast(x, dOut));
        Pointer biasPtr = bias == null ? null : bias.data_ptr();
        if (dev >= 0) {
            Pointer stream = KernelCall.stream(dev, "lora_forward_cuda");
            LoraKernels.lora_forward_cuda(x.data_ptr(), ndt, rows, dIn, dOut, rank, as.data_ptr(), bs.data_ptr(),
                    biasPtr, 1f, idx.data_ptr(), n, scales.data_ptr(), 0f, 0, 0, null, y.data_ptr(), stream);
        } else {
            Tensor xs = KernelCall.empty(dt, dev, rows, rank);
            LoraKernels.lora_forward_cpu(x.data_ptr(), ndt, rows, dIn, dOut, rank, as.data_ptr(), bs.data_ptr(), biasPtr,
                    1f, idx.data_ptr(), n, scales.data_ptr(), 0f, 0, 0, xs.data_ptr(), y.data_ptr());
            xs.close();
        }
        as2d(y, rows, dOut).addmm_(as2d(x, rows, dIn), weight.t());
        return y;
    }

    /**
     * Merges (or with a negative scale, unmerges) an adapter into the weight in place:
     * {@code W += scale·B·A}. {@code a} and {@code b} are the float32 master weights (float64 with a float64 weight
     * on the CPU), so the weight is rounded once. In bf16/fp16, unmerge(merge(W)) equals W only up to that rounding.
     */
    public static void merge(Tensor weight, Tensor a, Tensor b, double scale) {
        TensorCheck.of("weight", weight).cpuOrCuda().dtype(LAYER_TYPES).dims(2).nonEmpty().contiguous();
        ScalarType dt = Torch.dtype(weight);
        long dOut = weight.size(0), dIn = weight.size(1);
        ScalarType at = weight.is_cuda() ? ScalarType.Float : null;
        if (at == null) {
            at = Torch.dtype(a) == ScalarType.Double ? ScalarType.Double : ScalarType.Float;
        }
        TensorCheck.of("lora_A", a).dtype(at).dims(2).sameDevice("weight", weight).contiguous();
        long rank = a.size(0);
        checkRank(rank, "lora_A");
        TensorCheck.of("lora_A", a).shape(rank, dIn);
        TensorCheck.of("lora_B", b).dtype(at).shape(dOut, rank).sameDevice("weight", weight).contiguous();
        checkScale(scale, "scale");
        if (dt == ScalarType.Double && weight.is_cuda()) {
            throw new IllegalArgumentException("weight: float64 LoRA runs on the CPU only (use float32 on CUDA)");
        }
        int ndt = TensorCheck.nativeDType(dt);
        if (weight.is_cuda()) {
            Pointer stream = KernelCall.stream(KernelCall.deviceIndex(weight), "lora_merge_cuda");
            LoraKernels.lora_merge_cuda(weight.data_ptr(), ndt, dOut, dIn, rank, a.data_ptr(), b.data_ptr(),
                    (float) scale, stream);
        } else {
            LoraKernels.lora_merge_cpu(weight.data_ptr(), ndt, dOut, dIn, rank, a.data_ptr(), b.data_ptr(),
                    TensorCheck.nativeDType(at), (float) scale);
        }
    }

    /**
     * The dropout keep mask the kernels use for a tensor of {@code n} elements (uint8 on the CPU, 1 = kept): element
     * i of x (row-major) survives when {@code mask[i] == 1}. For tests and for reproducing a step elsewhere.
     */
    public static Tensor dropoutMask(long n, double p, long seed, long offset) {
        checkDropout(p);
        if (n < 0) {
            throw new IllegalArgumentException("n: must be >= 0, got " + n);
        }
        Tensor keep = Torch.empty(ScalarType.Byte, Devices.cpu(), n);
        if (n > 0) {
            LoraKernels.lora_dropout_mask_cpu(n, (float) p, seed, offset, keep.data_ptr());
        }
        return keep;
    }

    /** The kept fraction's rescale 1/(1 - p') for the 2^-16-quantised p' the kernels use. */
    public static double dropoutScale(double p) {
        checkDropout(p);
        double p16 = Math.min(65535, Math.rint(p * 65536));
        return 65536.0 / (65536.0 - p16);
    }
}
