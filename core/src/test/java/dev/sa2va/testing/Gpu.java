package dev.sa2va.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sa2va.core.Devices;

/** For tests tagged "gpu": call {@link #require()} in {@code @BeforeEach} so skipped tests are still counted. */
public final class Gpu {
    private Gpu() {
    }

    public static void require() {
        assumeTrue(Devices.torchCudaAvailable(), "no CUDA device visible to libtorch: skipping GPU test");
        assumeTrue(dev.sa2va.kernels.NativeLibrary.built_with_cuda(), "native library built without CUDA");
    }
}
