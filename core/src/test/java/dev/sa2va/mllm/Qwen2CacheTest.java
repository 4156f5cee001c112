package dev.sa2va.mllm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The KV-cache paths of the decoder give the same hidden states as one full causal pass: prefill in one go, in
 * two chunks (the second attends to cached positions through an explicit mask) and token by token. Random
 * weights at a small config with GQA (6 heads over 2 KV heads) and a tied head.
 */
class Qwen2CacheTest {
    static Sa2vaMllm model;

    static Sa2vaConfig smallConfig(boolean tied) {
        return new Sa2vaConfig(new Sa2vaConfig.Vision(32, 1, 2, 64, 56, 14, 1e-6, true),
                new Sa2vaConfig.Llm(48, 2, 6, 2, 96, 1e-6, 1e6, tied, 100, 4096), "qwen_chat", 0.5, "v2", -1);
    }

    @BeforeAll
    static void build() {
        Torch.setThreads(Integer.getInteger("sa2va.threads", 2));
        model = MllmWeights.random(smallConfig(true), 100, 7, ScalarType.Float, Devices.cpu());
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static Tensor embeds(int len) {
        Torch.seed(11);
        return Torch.randn(ScalarType.Float, Devices.cpu(), 1, len, 48);
    }

    @Test
    void chunkedAndStepwisePrefillEqualOneFullPass() {
        Qwen2Model llm = model.llm();
        Tensor x = embeds(13);
        Tensor full = llm.forward(x, null, Probe.NONE);
        try (KvCache cache = llm.newCache(1, 13)) {
            Tensor a = llm.forward(x.narrow(1, 0, 5), cache, Probe.NONE);
            Tensor b = llm.forward(x.narrow(1, 5, 8), cache, Probe.NONE);
            assertEquals(13, cache.length());
            double e = MllmReferenceCheck.relErr(torch.cat(new TensorVector(a, b), 1), full);
            assertTrue(e < 1e-6, "two chunks vs full: " + e);
        }
        try (KvCache cache = llm.newCache(1, 16)) {
            Tensor[] parts = new Tensor[13];
            parts[0] = llm.forward(x.narrow(1, 0, 4), cache, Probe.NONE);
            for (int i = 4; i < 13; i++) {
                parts[i - 3] = llm.forward(x.narrow(1, i, 1), cache, Probe.NONE);
            }
            Tensor steps = torch.cat(new TensorVector(java.util.Arrays.copyOf(parts, 10)), 1);
            double e = MllmReferenceCheck.relErr(steps, full);
            assertTrue(e < 1e-6, "prefill + single steps vs full: " + e);
        }
    }

    @Test
    void truncateReplaysTheSameContinuation() {
        Qwen2Model llm = model.llm();
        Tensor x = embeds(9);
        try (KvCache cache = llm.newCache(1, 9)) {
            llm.forward(x.narrow(1, 0, 6), cache, Probe.NONE);
            Tensor first = llm.forward(x.narrow(1, 6, 3), cache, Probe.NONE);
            cache.truncate(6);
            Tensor again = llm.forward(x.narrow(1, 6, 3), cache, Probe.NONE);
            assertEquals(0.0, MllmReferenceCheck.relErr(again, first));
            assertThrows(IllegalArgumentException.class, () -> cache.truncate(10));
        }
    }

    @Test
    void tiedHeadIsTheEmbeddingMatrix() {
        Qwen2Model llm = model.llm();
        assertTrue(llm.tiedLmHead());
        Tensor h = embeds(3);
        Tensor ids = Torch.fromLongs(new long[] {0, 1, 2, 3, 4}, 1, 5);
        Tensor e = llm.embed(ids).select(0, 0);                 // rows 0..4 of the embedding matrix
        Tensor want = h.matmul(e.t());                           // logits of those 5 tokens
        Tensor got = llm.logits(h).narrow(-1, 0, 5);
        assertTrue(MllmReferenceCheck.relErr(got, want) < 1e-6);
    }

    @Test
    void cacheOverflowAndBadShapesAreRejected() {
        Qwen2Model llm = model.llm();
        try (KvCache cache = llm.newCache(1, 4)) {
            IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
                    () -> llm.forward(embeds(5), cache, Probe.NONE));
            assertTrue(ex.getMessage().contains("capacity"), ex.getMessage());
            assertEquals(0, cache.length());
        }
        assertThrows(IllegalArgumentException.class,
                () -> llm.forward(Torch.zeros(ScalarType.Float, Devices.cpu(), 1, 3, 47), null, Probe.NONE));
        assertThrows(IllegalArgumentException.class,
                () -> llm.embed(Torch.zeros(ScalarType.Float, Devices.cpu(), 1, 3)));
    }
}
