package dev.sa2va.core;

import dev.sa2va.kernels.NativeLibrary;
import java.util.concurrent.ConcurrentHashMap;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The per-call plumbing of a kernel launch with as few JNI objects as possible: on a GPU the Java side of a call
 * is host time spent before every launch (the first H100 run measured ~31 µs per {@code MaskMetrics.confusion},
 * benchmarks/RESULTS.md), so outputs are allocated with cached {@link TensorOptions}, devices are compared without
 * creating {@link Device} objects where one GPU is visible, and whether the library has CUDA is asked once.
 */
public final class KernelCall {
    static {
        JavaCppDefaults.apply(); // before any JavaCPP class initialises (see JavaCppDefaults)
    }

    private static final boolean BUILT_WITH_CUDA = NativeLibrary.built_with_cuda();
    private static final MemoryFormatOptional NO_FORMAT = keep(new MemoryFormatOptional());
    private static final ConcurrentHashMap<Long, TensorOptions> OPTIONS = new ConcurrentHashMap<>();
    private static volatile int cudaDevices = -1;

    private KernelCall() {
    }

    /** Survives any {@code PointerScope} open at first use: cached objects must outlive the caller's scope. */
    private static <P extends Pointer> P keep(P p) {
        p.retainReference();
        return p;
    }

    /** CUDA device index of a tensor, -1 on the CPU. Creates no object when one GPU is visible. */
    public static int deviceIndex(Tensor t) {
        if (!t.is_cuda()) {
            return -1;
        }
        if (cudaDeviceCount() == 1) {
            return 0;
        }
        try (Device d = t.device()) {
            return Math.max(0, d.index());
        }
    }

    /** {@link #deviceIndex} of an argument that must be on the CPU or a CUDA device (else the message names it). */
    public static int device(String name, Tensor t) {
        if (t.is_cuda()) {
            return deviceIndex(t);
        }
        if (!t.is_cpu()) {
            throw new IllegalArgumentException(name + ": device " + Devices.describe(t.device())
                    + " not supported (cpu or cuda)");
        }
        return -1;
    }

    private static int cudaDeviceCount() {
        int n = cudaDevices;
        if (n < 0) {
            n = Devices.torchCudaAvailable() ? (int) torch.cuda_device_count() : 0;
            cudaDevices = n;
        }
        return n;
    }

    /**
     * {@code t} is on the device {@code refDevice} (from {@link #deviceIndex} of the first argument); the message
     * names both arguments.
     */
    public static void requireDevice(String name, Tensor t, String refName, int refDevice) {
        boolean cuda = t.is_cuda();
        if (!cuda && !t.is_cpu()) {
            throw new IllegalArgumentException(name + ": device " + Devices.describe(t.device())
                    + " not supported (cpu or cuda)");
        }
        boolean same = cuda == (refDevice >= 0);
        if (same && cuda && cudaDeviceCount() > 1) {
            same = deviceIndex(t) == refDevice;
        }
        if (!same) {
            throw new IllegalArgumentException(name + ": is on " + Devices.describe(t.device()) + " but " + refName
                    + " is on " + (refDevice < 0 ? "cpu" : "cuda:" + refDevice) + "; move both to the same device");
        }
    }

    /** An uninitialised tensor on device {@code device} (-1 = cpu). */
    public static Tensor empty(ScalarType dtype, int device, long... shape) {
        long key = ((long) dtype.value << 32) | (device + 1L);
        TensorOptions o = OPTIONS.get(key);
        if (o == null) {
            Device d = device < 0 ? Devices.cpu() : Devices.cuda(device);
            o = OPTIONS.computeIfAbsent(key, k -> keep(Torch.options(dtype, d)));
        }
        return torch.empty(shape, o, NO_FORMAT);
    }

    /**
     * {@code previous} when it is a contiguous tensor of this dtype, device and shape (its contents will be
     * overwritten), else a new one: lets hot loops pass last call's outputs back and skip the allocation, which costs
     * more host time than the launch itself for small problems. A result created inside a {@code PointerScope} dies
     * with the scope: keep reused outputs outside it (or {@code retainReference()} them).
     */
    public static Tensor reuse(Tensor previous, ScalarType dtype, int device, long... shape) {
        if (previous != null && !previous.isNull() && previous.dim() == shape.length && Torch.dtype(previous) == dtype
                && previous.is_contiguous() && (device < 0 ? previous.is_cpu() : previous.is_cuda())) {
            boolean same = true;
            for (int i = 0; same && i < shape.length; i++) {
                same = previous.size(i) == shape[i];
            }
            if (same && (device < 0 || deviceIndex(previous) == device)) {
                return previous;
            }
        }
        return empty(dtype, device, shape);
    }

    /** Zeros on device {@code device} (-1 = cpu). */
    public static Tensor zeros(ScalarType dtype, int device, long... shape) {
        return empty(dtype, device, shape).zero_();
    }

    /**
     * Torch's current stream on CUDA device {@code device} after making the device current in our runtime, or
     * null for the CPU ({@code device} < 0). Throws when the library was built without CUDA.
     */
    public static Pointer stream(int device, String kernel) {
        if (device < 0) {
            return null;
        }
        if (!BUILT_WITH_CUDA) {
            throw new UnsupportedOperationException("sa2va native library was built without CUDA (no nvcc at build "
                    + "time), so '" + kernel + "' cannot run on cuda:" + device
                    + "; rebuild with nvcc on the PATH or pass CPU tensors");
        }
        return CudaStreams.prepareLaunch(device, kernel);
    }
}
