package dev.sa2va.mllm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The Java MLLM against HF transformers (InternVLForConditionalGeneration + Qwen2ForCausalLM, transformers 5.17,
 * identical random weights) at the tiny fixture config (2 ViT layers, 3 Qwen2 layers with GQA 4/2, untied head,
 * checkpoint with F32 vision and BF16 LLM shards): every stage in fp32 within 1e-4, bf16 within
 * max(2e-2, 1.5 × HF's own bf16 error), 32 identical greedy tokens in fp32.
 */
class MllmTinyTest {
    static MllmReferenceCheck ref;

    @BeforeAll
    static void open() throws Exception {
        Torch.setThreads(Integer.getInteger("sa2va.threads", 2));
        ref = new MllmReferenceCheck(Fixtures.dir("tiny"));
    }

    @AfterAll
    static void close() throws Exception {
        ref.close();
    }

    @Test
    void everyStageMatchesHfInFp32() throws Exception {
        try (Sa2vaMllm m = MllmWeights.load(ref.dir.resolve("model"), ScalarType.Float, Devices.cpu())) {
            Map<String, Double> err = ref.stages(m, true, ref.ref32).get(0);
            System.out.println("tiny fp32 rel. errors vs HF: " + err);
            // every reference tensor was compared (a stage silently skipped would not fail otherwise)
            for (String k : ref.ref32.keys()) {
                assertTrue(err.containsKey(k), "stage not compared: " + k);
            }
            err.forEach((k, e) -> assertTrue(e <= 1e-4, k + ": rel. error " + e + " > 1e-4"));
        }
    }

    @Test
    void bf16WithinHfsOwnBf16Error() throws Exception {
        try (Sa2vaMllm m = MllmWeights.load(ref.dir.resolve("model"), ScalarType.BFloat16, Devices.cpu())) {
            List<Map<String, Double>> err = ref.stages(m, false, ref.ref32, ref.ref16);
            System.out.println("tiny bf16 rel. errors vs HF fp32: " + err.get(0) + "; vs HF bf16: " + err.get(1));
            assertEquals(ref.ref16.keys(), err.get(0).keySet());
            err.get(0).forEach((k, e) -> {
                double bound = Math.max(2e-2, 1.5 * ref.hfBf16Error(k.equals("llm.logits_rows") ? "llm.logits" : k));
                assertTrue(e <= bound, k + ": bf16 rel. error " + e + " > " + bound);
            });
        }
    }

    @Test
    void greedyTokensMatchHfInFp32() throws Exception {
        try (Sa2vaMllm m = MllmWeights.load(ref.dir.resolve("model"), ScalarType.Float, Devices.cpu())) {
            Map<String, Generator.Result> got = ref.greedy(m, 32);
            long[] mm = ref.longs("greedy", "mm_greedy_fp32"), text = ref.longs("greedy", "text_greedy_fp32");
            assertEquals(32, mm.length);
            assertArrayEquals(mm, got.get("mm").tokens(), "multimodal greedy, first difference at step "
                    + MllmReferenceCheck.firstMismatch(got.get("mm").tokens(), mm));
            assertArrayEquals(text, got.get("text").tokens(), "text greedy");
            // our own top-1/top-2 margins agree with HF's: the same logits, not just the same argmax
            double[] hm = ref.doubles("greedy", "mm_greedy_margins_fp32");
            for (int i = 0; i < hm.length; i++) {
                assertEquals(hm[i], got.get("mm").margins()[i], 1e-4 * Math.max(1, Math.abs(hm[i])), "margin at step " + i);
            }
        }
    }
}
