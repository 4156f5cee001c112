package dev.sa2va.core;

import dev.sa2va.kernels.DType;
import java.util.Arrays;
import java.util.stream.Collectors;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Validation of a tensor argument before its raw pointer goes to a native kernel. Every failure is an
 * {@link IllegalArgumentException} naming the argument, what was expected and what was found, so a bad call
 * never reaches native code.
 *
 * <pre>{@code
 * Pointer p = TensorCheck.of("logits", logits).dtype(FLOAT_TYPES).contiguous().dims(2).pointer();
 * }</pre>
 */
public final class TensorCheck {
    static {
        JavaCppDefaults.apply(); // before any JavaCPP class initialises (see JavaCppDefaults)
    }

    /** float32, float16, bfloat16. */
    public static final ScalarType[] FLOAT_TYPES = {ScalarType.Float, ScalarType.Half, ScalarType.BFloat16};

    private final String name;
    private final Tensor t;

    private TensorCheck(String name, Tensor t) {
        this.name = name;
        this.t = t;
        if (t == null || t.isNull() || !t.defined()) {
            throw new IllegalArgumentException(name + ": tensor is null or undefined");
        }
    }

    public static TensorCheck of(String name, Tensor t) {
        return new TensorCheck(name, t);
    }

    public TensorCheck dtype(ScalarType... allowed) {
        ScalarType st = Torch.dtype(t);
        for (ScalarType a : allowed) {
            if (a == st) {
                return this;
            }
        }
        throw new IllegalArgumentException(name + ": dtype " + dtypeName(st) + " not supported, expected "
                + Arrays.stream(allowed).map(TensorCheck::dtypeName).collect(Collectors.joining(" or ")));
    }

    public TensorCheck contiguous() {
        if (!t.is_contiguous()) {
            throw new IllegalArgumentException(name + ": must be contiguous (shape " + shapeString(t) + ", strides "
                    + Arrays.toString(stridesOf(t)) + "); call .contiguous() first");
        }
        return this;
    }

    public TensorCheck dims(int n) {
        if (t.dim() != n) {
            throw new IllegalArgumentException(name + ": expected " + n + " dimensions, got shape " + shapeString(t));
        }
        return this;
    }

    public TensorCheck minDims(int n) {
        if (t.dim() < n) {
            throw new IllegalArgumentException(name + ": expected at least " + n + " dimensions, got shape "
                    + shapeString(t));
        }
        return this;
    }

    /** Exact shape; -1 matches any size in that dimension. */
    public TensorCheck shape(long... expected) {
        long[] s = shapeOf(t);
        boolean ok = s.length == expected.length;
        for (int i = 0; ok && i < s.length; i++) {
            ok = expected[i] < 0 || expected[i] == s[i];
        }
        if (!ok) {
            throw new IllegalArgumentException(name + ": expected shape " + Arrays.toString(expected).replace("-1", "*")
                    + ", got " + shapeString(t));
        }
        return this;
    }

    public TensorCheck nonEmpty() {
        if (t.numel() == 0) {
            throw new IllegalArgumentException(name + ": is empty (shape " + shapeString(t) + ")");
        }
        return this;
    }

    /** Same shape as another (already checked) argument. */
    public TensorCheck sameShape(String otherName, Tensor other) {
        if (!Arrays.equals(shapeOf(t), shapeOf(other))) {
            throw new IllegalArgumentException(name + ": shape " + shapeString(t) + " does not match " + otherName
                    + " shape " + shapeString(other));
        }
        return this;
    }

    /** Same device as another argument. */
    public TensorCheck sameDevice(String otherName, Tensor other) {
        Device a = t.device(), b = other.device();
        if (a.type().intern() != b.type().intern() || (a.is_cuda() && Math.max(0, a.index()) != Math.max(0, b.index()))) {
            throw new IllegalArgumentException(name + ": is on " + Devices.describe(a) + " but " + otherName + " is on "
                    + Devices.describe(b) + "; move both to the same device");
        }
        return this;
    }

    public TensorCheck onDevice(Device d) {
        Device a = t.device();
        if (a.type().intern() != d.type().intern() || (a.is_cuda() && Math.max(0, a.index()) != Math.max(0, d.index()))) {
            throw new IllegalArgumentException(name + ": is on " + Devices.describe(a) + ", expected "
                    + Devices.describe(d));
        }
        return this;
    }

    /** CPU or CUDA only (not meta, mps, ...). */
    public TensorCheck cpuOrCuda() {
        Device a = t.device();
        if (!a.is_cpu() && !a.is_cuda()) {
            throw new IllegalArgumentException(name + ": device " + Devices.describe(a) + " not supported (cpu or cuda)");
        }
        return this;
    }

    public Pointer pointer() {
        return t.data_ptr();
    }

    public Tensor tensor() {
        return t;
    }

    // ---- helpers -------------------------------------------------------------------------------------------

    public static long[] shapeOf(Tensor t) {
        long[] s = new long[(int) t.dim()];
        for (int i = 0; i < s.length; i++) {
            s[i] = t.size(i);
        }
        return s;
    }

    public static long[] stridesOf(Tensor t) {
        long[] s = new long[(int) t.dim()];
        for (int i = 0; i < s.length; i++) {
            s[i] = t.stride(i);
        }
        return s;
    }

    public static String shapeString(Tensor t) {
        return Arrays.toString(shapeOf(t));
    }

    public static String dtypeName(ScalarType st) {
        switch (st) {
            case Float: return "float32";
            case Half: return "float16";
            case BFloat16: return "bfloat16";
            case Double: return "float64";
            case Byte: return "uint8";
            case Char: return "int8";
            case Short: return "int16";
            case Int: return "int32";
            case Long: return "int64";
            case Bool: return "bool";
            default: return st.toString();
        }
    }

    /** The native kernels' dtype code ({@link DType}) of a torch dtype. */
    public static int nativeDType(ScalarType st) {
        switch (st) {
            case Float: return DType.F32;
            case Half: return DType.F16;
            case BFloat16: return DType.BF16;
            case Byte: return DType.U8;
            case Long: return DType.I64;
            case Double: return DType.F64;
            case Int: return DType.I32;
            default: throw new IllegalArgumentException("no native kernel dtype for " + dtypeName(st));
        }
    }
}
