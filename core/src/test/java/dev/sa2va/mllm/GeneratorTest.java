package dev.sa2va.mllm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import java.util.Arrays;
import java.util.List;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Stop criteria and [SEG] collection of the greedy generator, on the tiny fixture model and tokenizer, with the
 * expected outcome derived from HF's 32 greedy tokens (reference.json), not from our own run.
 */
class GeneratorTest {
    static MllmReferenceCheck ref;
    static Sa2vaMllm model;
    static Tokenizer tok;
    static Tensor prompt;
    static long[] hfTokens;

    @BeforeAll
    static void load() throws Exception {
        Torch.setThreads(Integer.getInteger("sa2va.threads", 2));
        ref = new MllmReferenceCheck(Fixtures.dir("tiny"));
        model = MllmWeights.load(ref.dir.resolve("model"), ScalarType.Float, Devices.cpu());
        tok = Tokenizer.load(ref.dir.resolve("model"));
        Tensor features = model.imageFeatures(ref.inputs.get("pixel_values"), Probe.NONE);
        prompt = model.inputsEmbeds(ref.inputs.get("input_ids"), features, ref.tokenId("<IMG_CONTEXT>"));
        hfTokens = ref.longs("greedy", "mm_greedy_fp32");
    }

    @AfterAll
    static void close() throws Exception {
        model.close();
        tok.close();
        ref.close();
    }

    @Test
    void stopTokenEndsGenerationAndIsKept() {
        long stop = hfTokens[9];
        int first = 0;
        while (hfTokens[first] != stop) {
            first++;
        }
        Generator.Result r = Generator.greedy(model.llm(), prompt,
                new Generator.Options(32, new long[] {stop}, null, -1, false), null);
        assertEquals("token", r.stopReason());
        assertArrayEquals(Arrays.copyOf(hfTokens, first + 1), r.tokens());
    }

    @Test
    void stopStringIsMatchedOnDecodedTextWithoutNewlines() {
        // a suffix of the text decoded from HF's first 12 tokens; expected stop: the first prefix whose decoded
        // text (\r, \n removed) ends with it
        String text12 = tok.decode(Arrays.copyOf(hfTokens, 12), false).replace("\r", "").replace("\n", "");
        String stop = text12.substring(Math.max(0, text12.length() - 3));
        int expect = -1;
        for (int k = 1; k <= hfTokens.length && expect < 0; k++) {
            if (tok.decode(Arrays.copyOf(hfTokens, k), false).replace("\r", "").replace("\n", "").endsWith(stop)) {
                expect = k;
            }
        }
        assertTrue(expect > 0 && expect <= 12);
        Generator.Result r = Generator.greedy(model.llm(), prompt,
                new Generator.Options(32, null, List.of("never-there", stop), -1, false), ids -> tok.decode(ids, false));
        assertEquals("string", r.stopReason());
        assertArrayEquals(Arrays.copyOf(hfTokens, expect), r.tokens());
        assertTrue(Generator.endsWithStop("Sure<|en\nd|>", List.of("<|end|>")));
        assertFalse(Generator.endsWithStop("<|end|> ", List.of("<|end|>")));
    }

    @Test
    void segHiddenStatesAreThoseOfFedBackTokens() {
        // pretend one of HF's generated tokens is [SEG]: its hidden states must be the final-normed states of a
        // full teacher-forced pass at the positions where it is the input, among generated tokens fed back
        long seg = hfTokens[3];
        int n = 20;
        Generator.Result r = Generator.greedy(model.llm(), prompt, new Generator.Options(n, null, null, seg, false), null);
        assertEquals("length", r.stopReason());
        long[] fed = Arrays.copyOf(r.tokens(), n - 1);             // the last token is never fed back
        Tensor fedIds = Torch.fromLongs(fed, 1, fed.length);
        Tensor all = torch.cat(new TensorVector(prompt, model.llm().embed(fedIds)), 1);
        Tensor hidden = model.llm().forward(all, null, Probe.NONE);
        long p = prompt.size(1);
        Tensor want = SegTokens.select(hidden.narrow(1, p, fed.length), fedIds, seg);
        long count = Arrays.stream(fed).filter(t -> t == seg).count();
        assertTrue(count >= 1);
        assertEquals(count, r.segHidden().size(0));
        double e = MllmReferenceCheck.relErr(r.segHidden(), want);
        assertTrue(e < 1e-5, "seg hidden vs teacher forcing: " + e);
        // and text_hidden_fcs maps them to SAM2's 256-wide prompt space
        assertArrayEquals(new long[] {count, SegTokens.PROMPT_DIM}, dev.sa2va.core.TensorCheck.shapeOf(model.seg().embed(r.segHidden())));
    }

    @Test
    void oneTokenNeedsNoDecodeStep() {
        Generator.Result r = Generator.greedy(model.llm(), prompt, Generator.Options.tokens(1), null);
        assertArrayEquals(new long[] {hfTokens[0]}, r.tokens());
        assertEquals(0, r.segHidden().size(0));
    }
}
