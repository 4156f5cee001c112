package dev.sa2va.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.data.SyntheticFundus;
import dev.sa2va.io.ImageFiles;
import dev.sa2va.mllm.ChatTemplate;
import dev.sa2va.mllm.DynamicTiling;
import dev.sa2va.mllm.Generator;
import dev.sa2va.mllm.Probe;
import dev.sa2va.mllm.SegTokens;
import dev.sa2va.sam2.Sam2Output;
import dev.sa2va.sam2.Sam2Prompt;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The whole Sa2VA path on a tiny checkpoint (CPU, float32): structure, semantics and their consistency. */
class Sa2vaTinyTest {
    static final String PROMPT = "Please segment the blood vessels.";
    @TempDir
    static Path tmp;
    static Sa2VA model;
    static Tensor image;     // uint8 [90, 130, 3]
    static Tensor image2;    // uint8 [70, 64, 3]

    @BeforeAll
    static void load() throws Exception {
        Path dir = TinySa2va.write(tmp.resolve("tiny"), 11);
        model = Sa2VA.load(dir, Sa2VA.Options.defaults().withDevice("cpu"));
        image = SyntheticFundus.generate(SyntheticFundus.Config.defaults().withSize(130, 90), 3).image();
        image2 = SyntheticFundus.generate(SyntheticFundus.Config.defaults().withSize(64, 70), 4).image();
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    static double maxAbsDiff(Tensor a, Tensor b) {
        return a.to(ScalarType.Double).sub(b.to(ScalarType.Double)).abs().max().item().toDouble();
    }

    @Test
    void forcedAnswerGivesOneMaskAtTheImageSizeWithProbabilities() {
        try (PointerScope s = new PointerScope(); PreparedImage img = model.prepare(image, 12)) {
            int[] grid = new DynamicTiling(84).grid(130, 90);
            assertEquals(grid[0], img.columns());
            assertEquals(grid[1], img.rows());
            assertEquals(grid[0] * grid[1] + (grid[0] * grid[1] > 1 ? 1 : 0), img.tiles());
            Segmentation seg = model.segment(img, PROMPT, Generation.forced("Sure, [SEG]."));
            assertEquals("Sure, [SEG].", seg.text());
            assertEquals("forced", seg.stopReason());
            assertEquals(img.tiles(), seg.tiles());
            assertEquals(1, seg.masks().size());
            SegMask m = seg.mask();
            assertArrayEquals(new long[] {90, 130}, TensorCheck.shapeOf(m.logits()));
            assertEquals(ScalarType.Float, Torch.dtype(m.logits()));
            assertArrayEquals(new long[] {32, 32}, TensorCheck.shapeOf(m.lowResLogits()));
            Tensor p = m.probabilities();
            assertTrue(maxAbsDiff(p, m.logits().to(ScalarType.Double).sigmoid()) < 1e-6);
            // binary = p > 0.5 = logits > 0, and a lower threshold can only add pixels
            assertTrue(m.binary().equal(p.gt(Torch.scalar(0.5))));
            assertTrue(m.binary().equal(m.logits().gt(Torch.scalar(0.0))));
            assertEquals(0, m.binary().logical_and(m.binary(0.3).logical_not()).sum().item().toLong());
            // at the median probability the binary mask is about half the image (not a vacuous comparison)
            double median = p.median().item().toDouble();
            Tensor half = m.binary(median);
            Tensor disagree = half.ne(p.gt(Torch.scalar(median)));
            assertEquals(0, disagree.logical_and(p.sub(Torch.scalar(median)).abs().gt(Torch.scalar(1e-6))).sum()
                    .item().toLong(), "logit and probability thresholds disagree away from the threshold");
            long fg = half.sum().item().toLong();
            assertTrue(fg > 90 * 130 / 4 && fg < 90 * 130 * 3 / 4, fg + " pixels above the median");
            assertTrue(m.iouScore() > 0 && m.iouScore() < 1, "IoU score is a sigmoid output: " + m.iouScore());
            assertTrue(m.selectedOutput() >= 0 && m.selectedOutput() < 3);
        }
    }

    /**
     * The masks equal an independent composition of the public pieces: the MLLM forward on prompt + answer ids,
     * SegTokens.select (rows by id), text_hidden_fcs, SAM2 decode with the language prompt, Sa2VA's two bilinear
     * steps; and the selected output has the highest predicted IoU.
     */
    @Test
    void masksEqualTheComposedPipeline() {
        try (PointerScope s = new PointerScope(); NoGradGuard g = new NoGradGuard();
             PreparedImage img = model.prepare(image, 12)) {
            Segmentation seg = model.segment(img, PROMPT, Generation.forced("Sure, [SEG]. And [SEG]."));
            assertEquals(2, seg.masks().size());
            long[] promptIds = model.promptIds(PROMPT, img.tiles());
            assertEquals(promptIds.length, seg.promptTokens());
            long[] ans = model.tokenizer().encode("Sure, [SEG]. And [SEG].");
            long[] all = new long[promptIds.length + ans.length];
            System.arraycopy(promptIds, 0, all, 0, promptIds.length);
            System.arraycopy(ans, 0, all, promptIds.length, ans.length);
            Tensor ids = Torch.fromLongs(all, all.length);
            Tensor embeds = model.mllm().inputsEmbeds(ids, img.imageTokens(),
                    model.tokenizer().tokenId(ChatTemplate.IMG_CONTEXT));
            Tensor hidden = model.mllm().llm().forward(embeds, null, Probe.NONE);
            Tensor segRows = SegTokens.select(hidden, ids, model.segTokenId());
            assertEquals(2, segRows.size(0));
            Sam2Output out = model.sam2().decode(img.samFeatures(), Sam2Prompt.language(model.mllm().seg().embed(segRows)));
            double[] iou = Torch.toDoubles(out.iou());
            for (int i = 0; i < 2; i++) {
                Tensor low = out.bestMask().select(0, i).select(0, 0);
                Tensor sq = torch.upsample_bilinear2d(low.unsqueeze(0).unsqueeze(0), new long[] {128, 128}, false);
                Tensor ref = torch.upsample_bilinear2d(sq, new long[] {90, 130}, false).reshape(90, 130);
                SegMask m = seg.masks().get(i);
                assertTrue(maxAbsDiff(m.logits(), ref) < 1e-4, "mask " + i + " differs from the composition by "
                        + maxAbsDiff(m.logits(), ref));
                double best = Math.max(iou[3 * i], Math.max(iou[3 * i + 1], iou[3 * i + 2]));
                assertEquals(best, m.iouScore(), 1e-6);
                assertEquals(best, iou[3 * i + m.selectedOutput()], 0.0);
            }
            assertTrue(maxAbsDiff(seg.masks().get(0).logits(), seg.masks().get(1).logits()) > 1e-3,
                    "two [SEG] tokens at different positions should give different masks");
        }
    }

    /**
     * Teacher forcing reads the same hidden states as generation: generate freely, then force the generated tokens
     * and compare the rows of one generated token, fed back in generation vs read from the single forward pass.
     */
    @Test
    void forcedAnswerEqualsGeneration() {
        try (PointerScope s = new PointerScope(); NoGradGuard g = new NoGradGuard();
             PreparedImage img = model.prepare(image, 12)) {
            long[] promptIds = model.promptIds(PROMPT, img.tiles());
            Tensor embeds = model.mllm().inputsEmbeds(Torch.fromLongs(promptIds, promptIds.length), img.imageTokens(),
                    model.tokenizer().tokenId(ChatTemplate.IMG_CONTEXT));
            long[] toks = Generator.greedy(model.mllm().llm(), embeds, Generator.Options.tokens(8), null).tokens();
            long probe = toks[2];   // any generated token that is fed back (not the last) will do
            Generator.Result r = Generator.greedy(model.mllm().llm(), embeds,
                    new Generator.Options(8, null, null, probe, false), null);
            assertArrayEquals(toks, r.tokens());
            Tensor forced = model.segHiddenForced(embeds, toks, probe);
            long fedBack = java.util.Arrays.stream(toks, 0, toks.length - 1).filter(t -> t == probe).count();
            assertEquals(fedBack, r.segHidden().size(0));
            assertEquals(fedBack + (toks[toks.length - 1] == probe ? 1 : 0), forced.size(0));
            Tensor f = forced.narrow(0, 0, fedBack);
            assertTrue(Torch.relError(f, r.segHidden()) < 1e-5, "forced vs generated: " + Torch.relError(f, r.segHidden()));
        }
    }

    @Test
    void generatedAnswerFollowsTheGenerator() {
        try (PointerScope s = new PointerScope(); PreparedImage img = model.prepare(image, 12)) {
            Segmentation seg = model.segment(img, PROMPT, Generation.defaults().withMaxNewTokens(5));
            assertTrue(seg.answerTokens().length >= 1 && seg.answerTokens().length <= 5);
            assertTrue(List.of("token", "string", "length").contains(seg.stopReason()), seg.stopReason());
            assertEquals(model.tokenizer().decode(seg.answerTokens()), seg.text());
            long segs = java.util.Arrays.stream(seg.answerTokens(), 0, seg.answerTokens().length - 1)
                    .filter(t -> t == model.segTokenId()).count();
            assertEquals(segs, seg.masks().size());
        }
    }

    @Test
    void imageFeaturesAreReusedAcrossPrompts() {
        try (PointerScope s = new PointerScope()) {
            Generation g = Generation.forced("It is [SEG].");
            List<String> prompts = List.of(PROMPT, "<image>\n Please segment the optic disc in this image.");
            List<Segmentation> reused;
            Tensor tokensBefore;
            try (PreparedImage img = model.prepare(image, 12)) {
                tokensBefore = img.imageTokens().clone();
                reused = model.segment(img, prompts, g);
                // the prepared features are untouched by the prompts and still usable
                assertEquals(0.0, maxAbsDiff(tokensBefore, img.imageTokens()));
                assertFalse(img.isClosed());
            }
            for (int i = 0; i < prompts.size(); i++) {
                try (PreparedImage fresh = model.prepare(image, 12)) {
                    Segmentation f = model.segment(fresh, prompts.get(i), g);
                    assertEquals(0.0, maxAbsDiff(f.mask().logits(), reused.get(i).mask().logits()));
                }
            }
            assertNotEquals(0.0, maxAbsDiff(reused.get(0).mask().logits(), reused.get(1).mask().logits()),
                    "different prompts should give different masks");
        }
    }

    @Test
    void batchApiEqualsSingleCalls() {
        try (PointerScope s = new PointerScope()) {
            BufferedImage a = ImageFiles.rgbImage(image), b = ImageFiles.rgbImage(image2);
            Generation g = Generation.forced("Sure, [SEG].");
            List<Segmentation> batch = model.segmentAll(List.of(new Sa2VA.Request(a, PROMPT),
                    new Sa2VA.Request(a, "Segment the optic disc."), new Sa2VA.Request(b, PROMPT)), g);
            List<Segmentation> single = new ArrayList<>();
            single.add(model.segment(a, PROMPT, g));
            single.add(model.segment(a, "Segment the optic disc.", g));
            single.add(model.segment(b, PROMPT, g));
            assertEquals(3, batch.size());
            for (int i = 0; i < 3; i++) {
                assertEquals(0.0, maxAbsDiff(batch.get(i).mask().logits(), single.get(i).mask().logits()), "request " + i);
                assertEquals(single.get(i).text(), batch.get(i).text());
            }
            assertArrayEquals(new long[] {70, 64}, TensorCheck.shapeOf(batch.get(2).mask().logits()));
        }
    }

    @Test
    void fewerTilesMeanFewerImageTokens() {
        try (PointerScope s = new PointerScope(); PreparedImage one = model.prepare(image, 1);
             PreparedImage all = model.prepare(image, 12)) {
            assertEquals(1, one.tiles());
            assertTrue(all.tiles() > 1);
            Generation g = Generation.forced("Sure, [SEG].");
            Segmentation a = model.segment(one, PROMPT, g), b = model.segment(all, PROMPT, g);
            assertEquals(b.promptTokens() - a.promptTokens(), (all.tiles() - one.tiles()) * model.config().tokensPerTile());
            assertArrayEquals(TensorCheck.shapeOf(a.mask().logits()), TensorCheck.shapeOf(b.mask().logits()));
        }
    }

    @Test
    void anAnswerWithoutSegHasNoMask() {
        try (PointerScope s = new PointerScope(); PreparedImage img = model.prepare(image, 12)) {
            Segmentation seg = model.segment(img, PROMPT, Generation.forced("No."));
            assertTrue(seg.masks().isEmpty());
            IllegalStateException e = assertThrows(IllegalStateException.class, seg::mask);
            assertTrue(e.getMessage().contains("[SEG]") && e.getMessage().contains("No."), e.getMessage());
        }
    }

    @Test
    void badInputsAreRejectedWithTheirName() {
        try (PointerScope s = new PointerScope()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> model.prepare(new byte[10], 4, 4, 12));
            assertTrue(e.getMessage().startsWith("image:"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> model.prepare(Torch.zeros(ScalarType.Float, Devices.cpu(), 8, 8, 3), 12));
            assertTrue(e.getMessage().startsWith("image"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> model.prepare(image, 13));
            assertTrue(e.getMessage().contains("maxTiles"), e.getMessage());
            try (PreparedImage img = model.prepare(image, 12)) {
                e = assertThrows(IllegalArgumentException.class, () -> model.segment(img, " ", Generation.defaults()));
                assertTrue(e.getMessage().startsWith("prompt"), e.getMessage());
                e = assertThrows(IllegalArgumentException.class,
                        () -> model.segment(img, "<image> and <image>", Generation.forced("[SEG]")));
                assertTrue(e.getMessage().contains("image-context tokens"), e.getMessage());
                img.close();
                assertThrows(IllegalStateException.class, () -> model.segment(img, PROMPT, Generation.forced("[SEG]")));
            }
            assertThrows(java.io.IOException.class, () -> model.prepare(tmp.resolve("missing.png")));
            assertThrows(IllegalArgumentException.class, () -> Generation.forced("Sure").withThreshold(1.0));
            assertThrows(IllegalArgumentException.class, () -> Sa2VA.Options.defaults().withDevice("gpu"));
        }
    }

    @Test
    void randomWeightsAtAnArchitecture() {
        Sa2vaArchitecture arch = new Sa2vaArchitecture("tiny", model.config(), TinySa2va.SAM2, 3019);
        try (PointerScope s = new PointerScope();
             Sa2VA r = Sa2VA.random(arch, 5, Sa2VA.Options.defaults().withDevice("cpu")
                     .withTokenizer(new ByteTokenizer(java.util.Map.of("<img>", 3005L, "</img>", 3006L,
                             "<IMG_CONTEXT>", 3007L, "[SEG]", 3014L, "<|im_end|>", 3002L))))) {
            Segmentation seg = r.segment(ImageFiles.rgbImage(image2), PROMPT, Generation.forced("Sure, [SEG]."));
            assertArrayEquals(new long[] {70, 64}, TensorCheck.shapeOf(seg.mask().logits()));
            assertTrue(r.describe().contains("random"), r.describe());
        }
    }
}
