package dev.sa2va.core;

import dev.sa2va.kernels.NativeLibrary;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;

/**
 * Where tensors live: picks CUDA when libtorch sees a device, else the CPU, and reports what the native
 * kernel library was built with.
 */
public final class Devices {
    static {
        JavaCppDefaults.apply(); // before any JavaCPP class initialises (see JavaCppDefaults)
    }

    private Devices() {
    }

    /** True when libtorch (the classpath's PyTorch build) can use a CUDA device. */
    public static boolean torchCudaAvailable() {
        try {
            return torch.cuda_is_available();
        } catch (Throwable t) {
            return false;
        }
    }

    /** True when our kernels can run on CUDA too: libtorch sees a device and the native library has CUDA. */
    public static boolean cudaAvailable() {
        return torchCudaAvailable() && NativeLibrary.built_with_cuda();
    }

    /** cuda:0 when {@link #torchCudaAvailable()}, else cpu. */
    public static Device best() {
        return torchCudaAvailable() ? new Device(torch.DeviceType.CUDA, (byte) 0) : cpu();
    }

    public static Device cpu() {
        return new Device(torch.DeviceType.CPU);
    }

    public static Device cuda(int index) {
        return new Device(torch.DeviceType.CUDA, (byte) index);
    }

    /** "cpu", "cuda:0", ... */
    public static String describe(Device d) {
        return d.is_cuda() ? "cuda:" + Math.max(0, d.index()) : d.is_cpu() ? "cpu" : d.type().toString().toLowerCase();
    }
}
