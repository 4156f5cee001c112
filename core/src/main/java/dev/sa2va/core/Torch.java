package dev.sa2va.core;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Short forms of the libtorch calls used everywhere (the preset's overloads are verbose), plus host copies.
 * Everything here is plain libtorch; nothing is re-implemented.
 */
public final class Torch {
    static {
        JavaCppDefaults.apply(); // before any JavaCPP class initialises (see JavaCppDefaults)
    }

    private Torch() {
    }

    /**
     * The tensor's dtype as a canonical enum constant. JavaCPP returns enums from native code as fresh objects
     * (right {@code value}, wrong ordinal), so {@code ==} and {@code switch} on {@code t.scalar_type()} silently
     * fail; always go through {@code intern()} as here.
     */
    public static ScalarType dtype(Tensor t) {
        return t.scalar_type().intern();
    }

    public static TensorOptions options(ScalarType dtype, Device device) {
        return new TensorOptions(dtype).device(new DeviceOptional(device));
    }

    /** A floating-point scalar: an integer tensor times this promotes to float32. */
    public static Scalar scalar(double v) {
        return new Scalar(v);
    }

    /** An integer scalar (keeps integer dtypes). */
    public static Scalar scalar(long v) {
        return new Scalar(v);
    }

    public static Tensor empty(ScalarType dtype, Device device, long... shape) {
        return torch.empty(shape, options(dtype, device), new MemoryFormatOptional());
    }

    public static Tensor zeros(ScalarType dtype, Device device, long... shape) {
        return torch.zeros(shape, options(dtype, device));
    }

    public static Tensor full(double value, ScalarType dtype, Device device, long... shape) {
        return torch.full(shape, new Scalar(value), options(dtype, device));
    }

    /** Standard normal samples from torch's global generator (seed it with {@link #seed(long)}). */
    public static Tensor randn(ScalarType dtype, Device device, long... shape) {
        return torch.randn(shape, options(dtype, device));
    }

    /** Uniform [0, 1) samples from torch's global generator. */
    public static Tensor rand(ScalarType dtype, Device device, long... shape) {
        return torch.rand(shape, options(dtype, device));
    }

    public static void seed(long seed) {
        torch.manual_seed(seed);
    }

    /** Threads of libtorch's CPU ops (intra-op). */
    public static void setThreads(int n) {
        torch.set_num_threads(n);
    }

    // ---- host <-> tensor ------------------------------------------------------------------------------------

    /** A new CPU float32 tensor holding a copy of {@code data}. */
    public static Tensor fromFloats(float[] data, long... shape) {
        return Tensor.create(data, shape).clone();
    }

    public static Tensor fromDoubles(double[] data, long... shape) {
        return Tensor.create(data, shape).clone();
    }

    public static Tensor fromLongs(long[] data, long... shape) {
        return Tensor.create(data, shape).clone();
    }

    /** A new CPU uint8 tensor holding a copy of {@code data}. */
    public static Tensor fromBytes(byte[] data, long... shape) {
        Tensor t = empty(ScalarType.Byte, Devices.cpu(), shape);
        new BytePointer(t.data_ptr()).capacity(data.length).put(data);
        return t;
    }

    /** Copies any tensor to the host as float32 values (row-major). */
    public static float[] toFloats(Tensor t) {
        Tensor c = t.to(Devices.cpu(), ScalarType.Float).contiguous();
        float[] out = new float[(int) c.numel()];
        if (out.length == 0) {
            return out;
        }
        new FloatPointer(c.data_ptr()).capacity(out.length).get(out);
        return out;
    }

    public static double[] toDoubles(Tensor t) {
        Tensor c = t.to(Devices.cpu(), ScalarType.Double).contiguous();
        double[] out = new double[(int) c.numel()];
        if (out.length == 0) {
            return out;
        }
        new DoublePointer(c.data_ptr()).capacity(out.length).get(out);
        return out;
    }

    public static long[] toLongs(Tensor t) {
        Tensor c = t.to(Devices.cpu(), ScalarType.Long).contiguous();
        long[] out = new long[(int) c.numel()];
        if (out.length == 0) {
            return out;
        }
        new LongPointer(c.data_ptr()).capacity(out.length).get(out);
        return out;
    }

    public static byte[] toBytes(Tensor t) {
        Tensor c = t.to(Devices.cpu(), ScalarType.Byte).contiguous();
        byte[] out = new byte[(int) c.numel()];
        if (out.length == 0) {
            return out;
        }
        new BytePointer(c.data_ptr()).capacity(out.length).get(out);
        return out;
    }

    /** ‖a − ref‖ / ‖ref‖ computed in float64 (0 when both are zero). The standard correctness yardstick. */
    public static double relError(Tensor a, Tensor ref) {
        Tensor x = a.to(Devices.cpu(), ScalarType.Double), r = ref.to(Devices.cpu(), ScalarType.Double);
        double num = x.sub(r).norm().item().toDouble();
        double den = r.norm().item().toDouble();
        if (den == 0) {
            return num;
        }
        return num / den;
    }
}
