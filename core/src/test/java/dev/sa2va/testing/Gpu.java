package dev.sa2va.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sa2va.core.Devices;

/**
 * For tests tagged "gpu": call {@link #require()} in {@code @BeforeEach} so skipped tests are still counted.
 *
 * <p>Without a GPU (CI) the tests are skipped. On the GPU host ({@code .gpu/host.sh tests} sets
 * {@code SA2VA_REQUIRE_GPU=1}) a libtorch that cannot see the card, or a native library built without CUDA, fails
 * every GPU test instead: a staging mistake must not look like a green run.
 */
public final class Gpu {
    private Gpu() {
    }

    public static void require() {
        boolean required = "1".equals(System.getenv("SA2VA_REQUIRE_GPU"));
        boolean cuda = Devices.torchCudaAvailable();
        boolean kernels = dev.sa2va.kernels.NativeLibrary.built_with_cuda();
        if (required) {
            assertTrue(cuda, "SA2VA_REQUIRE_GPU=1 but libtorch sees no CUDA device (staging or driver problem)");
            assertTrue(kernels, "SA2VA_REQUIRE_GPU=1 but the native library was built without CUDA (build with -Pgpu)");
        }
        assumeTrue(cuda, "no CUDA device visible to libtorch: skipping GPU test");
        assumeTrue(kernels, "native library built without CUDA");
    }
}
