package dev.sa2va.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.ShortPointer;
import org.junit.jupiter.api.Test;

/** The native library loads and its C++ kernel computes what a plain Java loop computes. No libtorch here. */
class NativeLibraryTest {

    @Test
    void loadsAndReportsBuild() {
        NativeLibrary.load();
        assertTrue(NativeLibrary.cpu_threads() >= 1);
        if (NativeLibrary.built_with_cuda()) {
            assertTrue(NativeLibrary.cuda_runtime_version() >= 12000, "runtime " + NativeLibrary.cuda_runtime_version());
        } else {
            assertEquals(0, NativeLibrary.cuda_runtime_version());
        }
    }

    @Test
    void philoxMatchesRandom123KnownAnswers() {
        // Known-answer vectors of Philox4x32-10 published with Random123 (kat_vectors).
        int[][][] kat = {
            {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
            {{-1, -1, -1, -1}, {-1, -1}, {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
            {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
             {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}};
        for (int[][] k : kat) {
            int[] out = new int[4];
            NativeLibrary.philox_block(k[0], k[1][0], k[1][1], out);
            assertArrayEquals(k[2], out);
        }
    }

    private static long[] reference(float[] z, byte[] y, int n, int p, float thr) {
        long[] out = new long[n * 4];
        for (int s = 0; s < n; s++) {
            for (int i = 0; i < p; i++) {
                boolean pr = z[s * p + i] > thr, gt = y[s * p + i] != 0;
                out[4 * s] += pr && gt ? 1 : 0;
                out[4 * s + 1] += pr && !gt ? 1 : 0;
                out[4 * s + 2] += !pr && gt ? 1 : 0;
                out[4 * s + 3] += !pr && !gt ? 1 : 0;
            }
        }
        return out;
    }

    /** IEEE half bits of a float that is exactly representable as a normal half (or zero). */
    static short toHalf(float f) {
        int b = Float.floatToIntBits(f);
        int sign = (b >>> 16) & 0x8000;
        if ((b & 0x7fffffff) == 0) {
            return (short) sign;
        }
        int exp = ((b >>> 23) & 0xff) - 127 + 15;
        return (short) (sign | (exp << 10) | ((b & 0x7fffff) >>> 13));
    }

    @Test
    void cpuMaskStatsMatchesJavaLoopForAllFloatTypes() {
        Random rnd = new Random(7);
        for (int[] np : new int[][] {{1, 1}, {3, 1000}, {2, 4099}, {5, 257}}) {
            int n = np[0], p = np[1];
            float[] z = new float[n * p];
            byte[] y = new byte[n * p];
            for (int i = 0; i < z.length; i++) {
                // values exactly representable in fp16 and bf16, so all three dtypes see the same numbers
                z[i] = (rnd.nextInt(64) - 32) / 8f;
                y[i] = (byte) (rnd.nextInt(3) == 0 ? (rnd.nextBoolean() ? 1 : 255) : 0);
            }
            float thr = 0.25f;
            long[] want = reference(z, y, n, p, thr);
            short[] bf = new short[z.length], hf = new short[z.length];
            for (int i = 0; i < z.length; i++) {
                bf[i] = (short) (Float.floatToIntBits(z[i]) >>> 16);
                hf[i] = toHalf(z[i]);
            }
            Pointer[] inputs = {new FloatPointer(z), new ShortPointer(hf), new ShortPointer(bf)};
            int[] types = {DType.F32, DType.F16, DType.BF16};
            for (int k = 0; k < 3; k++) {
                LongPointer out = new LongPointer(n * 4L);
                MaskStatsKernels.mask_stats_cpu(inputs[k], types[k], new BytePointer(y), n, p, thr, out);
                long[] got = new long[n * 4];
                out.get(got);
                assertArrayEquals(want, got, "dtype " + types[k] + " n=" + n + " p=" + p);
            }
        }
    }

    @Test
    void cpuMaskStatsRejectsBadArguments() {
        LongPointer out = new LongPointer(4);
        RuntimeException e = assertThrows(RuntimeException.class, () ->
                MaskStatsKernels.mask_stats_cpu(new FloatPointer(1), DType.I64, new BytePointer(1), 1, 1, 0f, out));
        assertTrue(e.getMessage().contains("int64"), e.getMessage());
        e = assertThrows(RuntimeException.class, () ->
                MaskStatsKernels.mask_stats_cpu(new FloatPointer(1), DType.F32, new BytePointer(1), 0, 1, 0f, out));
        assertTrue(e.getMessage().contains("n >= 1"), e.getMessage());
    }

    @Test
    void cudaEntryPointFailsClearlyWithoutCudaOrDevice() {
        // Without nvcc at build time: "built without CUDA". With CUDA but no usable device (CI): a CUDA error
        // message. Host pointers are never dereferenced: the failure comes first.
        if (NativeLibrary.built_with_cuda() && NativeLibrary.cuda_device_count() > 0) {
            return; // a real GPU: covered by the gpu-tagged tests in core
        }
        RuntimeException e = assertThrows(RuntimeException.class, () -> MaskStatsKernels.mask_stats_cuda(
                new FloatPointer(4), DType.F32, new BytePointer(4), 1, 4, 0f, new LongPointer(4), null));
        String m = e.getMessage();
        if (NativeLibrary.built_with_cuda()) {
            assertTrue(m.contains("CUDA error"), m);
        } else {
            assertTrue(m.contains("built without CUDA"), m);
        }
    }
}
