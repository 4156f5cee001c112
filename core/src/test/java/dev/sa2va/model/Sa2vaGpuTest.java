package dev.sa2va.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.data.SyntheticFundus;
import dev.sa2va.data.SyntheticSource;
import dev.sa2va.eval.EvaluationReport;
import dev.sa2va.eval.Evaluator;
import dev.sa2va.eval.OutOfMemoryFailure;
import dev.sa2va.eval.SampleResult;
import dev.sa2va.eval.Segmenter;
import dev.sa2va.testing.Gpu;
import dev.sa2va.testing.Tf32;
import java.nio.file.Path;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Sa2VA path on CUDA with the tiny checkpoint: the same masks as on the CPU (fp32, TF32 off), a sane bf16 run,
 * and a real CUDA out-of-memory error retried by the harness at fewer tiles.
 */
@Tag("gpu")
class Sa2vaGpuTest {
    static final String PROMPT = "<image>\n Please segment blood vessels in this image.";
    @TempDir
    Path tmp;

    @BeforeEach
    void gpu() {
        Gpu.require();
        Tf32.offForThisRun();
    }

    @Test
    void cudaMatchesCpu() throws Exception {
        Path dir = TinySa2va.write(tmp.resolve("tiny"), 7);
        // the GPU host's class path has no HF tokenizers (DJL): the fixture's token ids with the byte-level stand-in
        Sa2VA.Options o = Sa2VA.Options.defaults();
        try (PointerScope s = new PointerScope();
             Sa2VA cpu = Sa2VA.load(dir, o.withDevice("cpu").withTokenizer(ByteTokenizer.forModel(dir)));
             Sa2VA cuda = Sa2VA.load(dir, o.withDevice("cuda:0").withDtype(ScalarType.Float)
                     .withTokenizer(ByteTokenizer.forModel(dir)));
             Sa2VA bf16 = Sa2VA.load(dir, o.withDevice("cuda:0").withTokenizer(ByteTokenizer.forModel(dir)))) {
            assertEquals(ScalarType.BFloat16, bf16.dtype(), "bf16 is the CUDA default");
            Tensor img = SyntheticFundus.generate(SyntheticFundus.Config.defaults().withSize(150, 110), 1).image();
            Generation g = Generation.forced("Sure, [SEG].");
            Tensor ref = cpu.segment(cpu.prepare(img, 12), PROMPT, g).mask().logits();
            SegMask m = cuda.segment(cuda.prepare(img, 12), PROMPT, g).mask();
            assertTrue(m.logits().is_cuda());
            double e32 = Torch.relError(m.logits(), ref);
            double e16 = Torch.relError(bf16.segment(bf16.prepare(img, 12), PROMPT, g).mask().logits(), ref);
            System.out.printf("tiny Sa2VA, CUDA vs CPU: fp32 %.2e, bf16 %.2e%n", e32, e16);
            assertTrue(e32 < 1e-4, "fp32 CUDA vs CPU " + e32);
            assertTrue(e16 < 5e-2, "bf16 CUDA vs fp32 CPU " + e16);
        }
    }

    /** A segmenter that raises libtorch's own CUDA out-of-memory error at memory level 0. */
    static final class OomAtLevelZero implements Segmenter {
        final Sa2vaSegmenter inner;

        OomAtLevelZero(Sa2vaSegmenter inner) {
            this.inner = inner;
        }

        @Override
        public String name() {
            return "oom-at-level-0(" + inner.name() + ")";
        }

        @Override
        public int memoryLevels() {
            return inner.memoryLevels();
        }

        @Override
        public Prediction segment(Input in, int level) throws Exception {
            if (level == 0) {
                Torch.empty(ScalarType.Byte, Devices.cuda(0), 1L << 50); // 1 PiB: the allocator refuses
            }
            return inner.segment(in, level);
        }

        @Override
        public void releaseMemory() {
            inner.releaseMemory();
        }
    }

    @Test
    void realCudaOutOfMemoryIsRetriedWithFewerTiles() throws Exception {
        try (Sa2VA model = Sa2VA.random(Sa2vaArchitecture.tiny(), 3, Sa2VA.Options.defaults().withDevice("cuda:0"))) {
            Sa2vaSegmenter seg = new Sa2vaSegmenter(model, false, Generation.forced("Sure, [SEG]."), null, null);
            try (PointerScope s = new PointerScope()) {
                Exception e = org.junit.jupiter.api.Assertions.assertThrows(Exception.class,
                        () -> Torch.empty(ScalarType.Byte, Devices.cuda(0), 1L << 50));
                assertTrue(OutOfMemoryFailure.matches(e), "libtorch's message is recognised: " + e.getMessage());
            }
            EvaluationReport r = new Evaluator(Evaluator.Options.defaults().withProgress(null))
                    .run(new SyntheticSource(SyntheticFundus.Config.defaults().withSize(200, 160), 4, 2),
                            new OomAtLevelZero(seg));
            assertEquals(2, r.evaluated(), r.toText());
            assertEquals(2, r.outOfMemoryRetries());
            for (SampleResult x : r.results()) {
                assertEquals(1, x.level());
                assertEquals(2, x.attempts());
            }
        }
    }
}
