package dev.sa2va.core;

import dev.sa2va.kernels.NativeLibrary;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch_cuda;

/**
 * The CUDA stream libtorch is using, so our kernels are ordered with torch ops without host syncs.
 * Kept in its own class: {@code torch_cuda} needs the CUDA build of libtorch and must never be touched
 * on CPU-only class paths.
 */
public final class CudaStreams {
    static {
        JavaCppDefaults.apply(); // before any JavaCPP class initialises (see JavaCppDefaults)
    }

    private CudaStreams() {
    }

    /**
     * Prepares a launch on {@code device}: checks that the native library has CUDA, makes the device current
     * in our CUDA runtime and returns torch's current stream on it (a {@code cudaStream_t}).
     */
    public static Pointer prepareLaunch(Device device, String kernel) {
        if (!NativeLibrary.built_with_cuda()) {
            throw new UnsupportedOperationException("sa2va native library was built without CUDA (no nvcc at build "
                    + "time), so '" + kernel + "' cannot run on " + Devices.describe(device)
                    + "; rebuild with nvcc on the PATH or pass CPU tensors");
        }
        return prepareLaunch(Math.max(0, device.index()), kernel);
    }

    /** {@link #prepareLaunch(Device, String)} by device index (the library's CUDA support is the caller's check). */
    public static Pointer prepareLaunch(int index, String kernel) {
        NativeLibrary.cuda_set_device(index);
        return torch_cuda.getCurrentCUDAStream((byte) index).stream();
    }
}
