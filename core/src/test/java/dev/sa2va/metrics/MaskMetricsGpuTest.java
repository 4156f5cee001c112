package dev.sa2va.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.testing.Gpu;
import java.util.Arrays;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The CUDA mask-statistics kernel against libtorch ops on the GPU and against our CPU kernel. */
@Tag("gpu")
class MaskMetricsGpuTest {
    static final Device CUDA = Devices.cuda(0);

    @BeforeEach
    void needGpu() {
        Gpu.require();
    }

    @Test
    void matchesTorchOpsAndCpuKernelOnRandomData() {
        Torch.seed(3);
        for (ScalarType st : new ScalarType[] {ScalarType.Float, ScalarType.Half, ScalarType.BFloat16}) {
            // sizes: tiny, not a multiple of any vector or block size, a batch of 1, and a large one
            for (long[] shape : new long[][] {{1, 1}, {3, 7}, {2, 37, 53}, {1, 1000003}, {8, 1024, 1024}, {129, 33}}) {
                Tensor logitsCpu = Torch.randn(ScalarType.Float, Devices.cpu(), shape).mul(Torch.scalar(2.5)).to(st);
                Tensor targetsCpu = MaskMetricsTest.randomTargets(shape);
                Tensor logits = logitsCpu.to(CUDA, st), targets = targetsCpu.to(CUDA, ScalarType.Byte);
                for (double thr : new double[] {0.0, 0.4}) {
                    long[] want = MaskMetricsTest.torchReference(logits, targets, thr);
                    long[] got = Torch.toLongs(MaskMetrics.confusion(logits, targets, thr));
                    long[] cpu = Torch.toLongs(MaskMetrics.confusion(logitsCpu, targetsCpu, thr));
                    assertArrayEquals(want, got, st + " " + Arrays.toString(shape));
                    assertArrayEquals(cpu, got, "cuda vs cpu " + st + " " + Arrays.toString(shape));
                }
            }
        }
    }

    @Test
    void misalignedViewsTakeTheScalarPath() {
        // a view starting one element in: not 16-byte aligned, so the kernel must use scalar loads
        Tensor big = Torch.randn(ScalarType.BFloat16, CUDA, 4 * 4097 + 1);
        Tensor logits = big.narrow(0, 1, 4 * 4097).reshape(4, 4097);
        Tensor tbig = MaskMetricsTest.randomTargets(4 * 4097 + 1).to(CUDA, ScalarType.Byte);
        Tensor targets = tbig.narrow(0, 1, 4 * 4097).reshape(4, 4097);
        assertTrue(logits.is_contiguous());
        assertArrayEquals(MaskMetricsTest.torchReference(logits, targets, 0), Torch.toLongs(MaskMetrics.confusion(logits, targets)));
    }

    @Test
    void emptyAndFullMasksOnGpu() {
        long p = 65537;
        Tensor neg = Torch.full(-5, ScalarType.BFloat16, CUDA, 3, p);
        Tensor none = Torch.zeros(ScalarType.Byte, CUDA, 3, p);
        Tensor all = Torch.full(1, ScalarType.Byte, CUDA, 3, p);
        assertArrayEquals(new long[] {0, 0, 0, p, 0, 0, 0, p, 0, 0, 0, p}, Torch.toLongs(MaskMetrics.confusion(neg, none)));
        Tensor pos = Torch.full(5, ScalarType.Half, CUDA, 3, p);
        assertArrayEquals(new long[] {p, 0, 0, 0, p, 0, 0, 0, p, 0, 0, 0}, Torch.toLongs(MaskMetrics.confusion(pos, all)));
    }

    @Test
    void deviceMismatchIsAClearError() {
        Tensor z = Torch.randn(ScalarType.Float, CUDA, 2, 16);
        Tensor y = Torch.zeros(ScalarType.Byte, Devices.cpu(), 2, 16);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MaskMetrics.confusion(z, y));
        assertTrue(e.getMessage().contains("targets: is on cpu but logits is on cuda:0"), e.getMessage());
    }
}
