package dev.sa2va.eval;

import dev.sa2va.testing.Tf32;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.data.SampleSource;
import dev.sa2va.data.SyntheticFundus;
import dev.sa2va.data.SyntheticSource;
import dev.sa2va.testing.Gpu;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The harness with CUDA maps: kernel counts as on the CPU, a real CUDA out-of-memory retried, allocator stats. */
@Tag("gpu")
class EvaluatorGpuTest {
    static final Device CUDA = Devices.cuda(0);

    @BeforeEach
    void needGpu() {
        Gpu.require();
    }

    /** The fake's maps, moved to the GPU; at level 0 on chosen samples it asks CUDA for 4 TiB first. */
    static final class CudaFake implements Segmenter {
        final FakeSegmenter cpu;
        final String oomId;
        int releases;

        CudaFake(Map<String, Tensor> truth, String oomId) {
            this.cpu = new FakeSegmenter(truth, 2);
            this.oomId = oomId;
        }

        @Override
        public String name() {
            return "fake on cuda";
        }

        @Override
        public int memoryLevels() {
            return 2;
        }

        @Override
        public Prediction segment(Input in, int level) throws Exception {
            if (in.sampleId().equals(oomId) && level == 0) {
                Torch.empty(ScalarType.Float, CUDA, 1L << 40);
            }
            Prediction p = cpu.segment(in, level);
            return new Prediction(p.map().to(CUDA, ScalarType.BFloat16), p.kind());
        }

        @Override
        public void releaseMemory() {
            releases++;
            CudaMemory.releaseCachedMemory();
        }
    }

    @Test
    void cudaMapsScoreLikeCpuMapsAndARealOutOfMemoryIsRetried() throws IOException {
        SampleSource src = new SyntheticSource(SyntheticFundus.Config.defaults().withSize(256, 256), 5, 4);
        Map<String, Tensor> truth = new HashMap<>();
        for (int i = 0; i < src.size(); i++) {
            truth.put(src.id(i), src.load(i).mask());
        }
        long oomsBefore = CudaMemory.outOfMemoryCount(0);
        CudaFake gpu = new CudaFake(truth, "synthetic_0002");
        EvaluationReport g = new Evaluator(Evaluator.Options.defaults().withProgress(null).withCalibration(true, 0.5))
                .run(src, gpu);
        // the same bf16 maps on the CPU: counts must be identical
        Segmenter cpuBf16 = new Segmenter() {
            final FakeSegmenter f = new FakeSegmenter(truth, 1);

            @Override
            public String name() {
                return "fake bf16 cpu";
            }

            @Override
            public Prediction segment(Input in, int level) throws Exception {
                return Prediction.probabilities(f.segment(in, level).map().to(ScalarType.BFloat16));
            }
        };
        EvaluationReport c = new Evaluator(Evaluator.Options.defaults().withProgress(null).withCalibration(true, 0.5))
                .run(src, cpuBf16);
        assertEquals(4, g.evaluated());
        for (int i = 0; i < 4; i++) {
            SampleResult a = g.results().get(i), b = c.results().get(i);
            assertEquals(b.tp(), a.tp(), a.id());
            assertEquals(b.fp(), a.fp(), a.id());
            assertEquals(b.fn(), a.fn(), a.id());
            assertEquals(b.tn(), a.tn(), a.id());
        }
        assertEquals(c.calibration(), g.calibration());
        SampleResult oom = g.results().get(1);
        assertEquals(2, oom.attempts(), "CUDA out of memory recognised and retried");
        assertEquals(1, oom.level());
        assertEquals(1, gpu.releases);
        assertTrue(CudaMemory.outOfMemoryCount(0) > oomsBefore, "the allocator counted the OOM");
        assertTrue(g.peakCudaBytes() > 0, "peak " + g.peakCudaBytes());
    }

    @Test
    void allocatorStatisticsFollowAllocations() {
        CudaMemory.releaseCachedMemory();
        CudaMemory.resetPeaks(0);
        long before = CudaMemory.peakAllocatedBytes(0); // = what is allocated now (other tests' tensors awaiting GC)
        long bytes = 256L << 20;
        Tensor t = Torch.empty(ScalarType.Byte, CUDA, bytes);
        long peak = CudaMemory.peakAllocatedBytes(0);
        assertTrue(peak - before >= bytes && peak - before < bytes + (8L << 20), "peak " + peak + ", before " + before);
        assertTrue(CudaMemory.peakReservedBytes(0) >= peak);
        t.close();
    }

    @Test
    void memoryCapTurnsLargeAllocationsIntoOutOfMemory() {
        long total = CudaMemory.totalBytes(0);
        assertTrue(total > (4L << 30), "total " + total);
        CudaMemory.releaseCachedMemory(); // the cap counts reserved memory: drop other tests' cached blocks
        // Tensors of earlier tests may still be alive (awaiting GC): cap at what is reserved now + 2 GiB.
        long base = CudaMemory.reservedBytes(0);
        try {
            double f = CudaMemory.capBytes(0, base + (2L << 30));
            assertEquals((base + (2L << 30)) / (double) total, f, 1e-12);
            Torch.empty(ScalarType.Byte, CUDA, 1L << 30); // 1 GiB fits under the cap
            RuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class,
                    () -> Torch.empty(ScalarType.Byte, CUDA, 3L << 30));
            assertTrue(OutOfMemoryFailure.matches(e), e.getMessage());
        } finally {
            CudaMemory.capBytes(0, total);
            CudaMemory.releaseCachedMemory();
        }
        Torch.empty(ScalarType.Byte, CUDA, 3L << 30); // uncapped again
    }

    @Test
    void frangiOnCudaMatchesCpu() throws Exception {
        SampleSource src = new SyntheticSource(SyntheticFundus.Config.defaults().withSize(384, 384), 2, 1);
        var s = src.load(0);
        Segmenter.Input in = new Segmenter.Input(s.id(), s.imageId(), s.image(), s.text());
        Tensor cpu = new FrangiVesselness().segment(in, 0).map();
        Tensor gpu;
        // TF32 off: with cuDNN's default TF32 convolutions (10-bit mantissa) the first H100 run differed by 0.089
        try (Tf32 off = Tf32.off()) {
            gpu = new FrangiVesselness(FrangiVesselness.Options.defaults().withDevice(CUDA)).segment(in, 0).map();
        }
        assertTrue(gpu.is_cuda());
        // float32 on both sides, different reduction orders: agree closely, not bit-exactly
        double maxDiff = gpu.cpu().sub(cpu).abs().max().item().toDouble();
        assertTrue(maxDiff < 0.03, "max |cuda - cpu| = " + maxDiff);
        long[] agree = EvaluatorTest.reference(gpu.cpu(), cpu.gt(Torch.scalar(0.5)).to(ScalarType.Byte), null, 0.5);
        double dice = 2.0 * agree[0] / (2 * agree[0] + agree[1] + agree[2]);
        assertTrue(dice > 0.99, "Dice between CPU and CUDA masks " + dice);
    }
}
