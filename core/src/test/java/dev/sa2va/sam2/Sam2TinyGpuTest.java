package dev.sa2va.sam2;

import dev.sa2va.testing.Tf32;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.testing.Gpu;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The committed tiny fixtures on CUDA: fp32 (TF32 off) ≤ 1e-4 per key and the same selected masks, as on the CPU;
 * bf16 by the SAM2-L rule against HF's own bf16 run on CUDA (recorded in the fixture summary).
 */
@Tag("gpu")
class Sam2TinyGpuTest {
    @BeforeEach
    void needGpu() {
        Gpu.require();
    }

    @Test
    void float32OnCudaMatchesHf() throws IOException {
        Map<String, Tensor> in = Sam2Fixtures.inputs(), ref = Sam2Fixtures.reference();
        try (Tf32 off = Tf32.off(); Sam2Model m = Sam2Model.load(Sam2Fixtures.weights(), Sam2Config.tinyRandom(),
                Sam2Weights.SA2VA_PREFIX, ScalarType.Float, Devices.cuda(0))) {
            Sam2Comparison c = Sam2Comparison.run(m, in, ref);
            System.out.printf("SAM2 tiny fp32 cuda: max relative error %.3e%n", c.maxError());
            Sam2TinyFixtureTest.within(c.errors, 1e-4);
            for (String p : Sam2Comparison.PROMPTS) {
                assertArrayEquals(c.refBest.get(p), c.javaBest.get(p), "selected mask, " + p);
            }
        }
    }

    /**
     * bf16 on CUDA, judged by the rule of the SAM2-L check ({@link Sam2Verification#judgeBf16}): each stage key
     * within max(2e-2, 1.5 × HF's own bf16-on-CUDA error on it, from the fixture summary), the selected mask judged
     * where the selection agrees, and the same selection wherever the reference's IoU top-2 margin is above 0.01.
     * A fixed 2e-2 is not a fair bound on every key: with random weights HF's own bf16 error on CUDA reaches ~2e-2
     * on some of the tiny model's mask logits.
     */
    @Test
    void bfloat16OnCudaIsWithinTheBound() throws IOException {
        Map<String, Tensor> in = Sam2Fixtures.inputs(), ref = Sam2Fixtures.reference();
        Map<String, Double> hf = Sam2Fixtures.hfBf16Errors("cuda");
        try (Sam2Model m = Sam2Model.load(Sam2Fixtures.weights(), Sam2Config.tinyRandom(), Sam2Weights.SA2VA_PREFIX,
                ScalarType.BFloat16, Devices.cuda(0))) {
            Sam2Comparison c = Sam2Comparison.run(m, in, ref);
            Map<String, Double> judged = Sam2Verification.judgedBf16(c);
            for (String k : judged.keySet()) {
                assertTrue(hf.containsKey(k), "fixture summary lacks HF's bf16 error on " + k);
            }
            List<String> failures = new ArrayList<>();
            Map<String, Double> bound = Sam2Verification.judgeBf16(c, judged, hf, failures);
            System.out.printf("SAM2 tiny bf16 cuda: max relative error %.3e (judged keys)%n errors %s%n HF bf16 %s%n"
                    + " bounds %s%n", judged.values().stream().mapToDouble(Double::doubleValue).max().orElse(0), judged,
                    hf, bound);
            assertEquals(List.of(), failures);
            assertTrue(c.refMargin.get("lang") > 0.01, "the lang prompt's selection is judged");
        }
    }
}
