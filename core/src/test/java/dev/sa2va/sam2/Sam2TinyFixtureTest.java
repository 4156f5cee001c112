package dev.sa2va.sam2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The Java SAM2 image path against HF transformers' Sam2Model (5.17, run in float64 on the same random weights):
 * every stage within 1e-4 relative error in float32, and the same selected mask for every prompt kind.
 */
class Sam2TinyFixtureTest {
    static final double FP32_BOUND = 1e-4;
    static Map<String, Tensor> in, ref;
    static Sam2Model model;
    static ImageFeatures features;

    @BeforeAll
    static void load() throws IOException {
        in = Sam2Fixtures.inputs();
        ref = Sam2Fixtures.reference();
        Sam2Config c = Sam2Fixtures.config();
        assertEquals(Sam2Config.tinyRandom(), c, "the fixture was generated with the tiny-random preset");
        model = Sam2Model.load(Sam2Fixtures.weights(), c, Sam2Weights.SA2VA_PREFIX, ScalarType.Float, Devices.cpu());
        features = model.encode(in.get("pixel_values"), true);
    }

    /** The prompts of the fixture (see NOTES.md): name -> prompt. */
    static Map<String, Sam2Prompt> prompts(Map<String, Tensor> in) {
        long b = in.get("lang_embed").size(0);
        Map<String, Sam2Prompt> p = new LinkedHashMap<>();
        p.put("lang", Sam2Prompt.language(in.get("lang_embed")));
        Tensor pts = in.get("points.coords").reshape(b, -1, 2), lab = in.get("points.labels").reshape(b, -1);
        p.put("points", Sam2Prompt.points(pts, lab));
        p.put("points_single", Sam2Prompt.points(pts, lab));
        p.put("box", Sam2Prompt.box(in.get("box").reshape(b, 4)));
        p.put("box_points", Sam2Prompt.boxAndPoints(in.get("box").reshape(b, 4),
                in.get("box_points.coords").reshape(b, -1, 2), in.get("box_points.labels").reshape(b, -1)));
        return p;
    }

    /** The reference has a point-batch dimension of 1 after the image batch; Java has none. */
    static Tensor dropPointBatch(Tensor r, Tensor like) {
        long[] rs = TensorCheck.shapeOf(r), js = TensorCheck.shapeOf(like);
        long[] expect = new long[js.length + 1];
        expect[0] = js[0];
        expect[1] = 1;
        System.arraycopy(js, 1, expect, 2, js.length - 1);
        assertArrayEquals(expect, rs, "reference shape vs Java shape " + Arrays.toString(js));
        return r.reshape(js);
    }

    static void within(Map<String, Double> errors, double bound) {
        double max = errors.values().stream().mapToDouble(Double::doubleValue).max().orElse(0);
        System.out.printf("SAM2 tiny vs HF: max relative error %.3e over %d keys%n", max, errors.size());
        List<String> bad = new ArrayList<>();
        errors.forEach((k, e) -> {
            if (!(e <= bound)) {
                bad.add(k + " " + e);
            }
        });
        assertTrue(bad.isEmpty(), "relative error above " + bound + ": " + bad + " (all: " + errors + ")");
    }

    @Test
    void encoderStagesMatchHf() {
        Map<String, Double> err = new LinkedHashMap<>();
        for (int i = 0; i < 4; i++) {
            Tensor t = features.trunkLevels().get(i);
            assertArrayEquals(TensorCheck.shapeOf(ref.get("trunk.level" + i)), TensorCheck.shapeOf(t), "trunk.level" + i);
            err.put("trunk.level" + i, Torch.relError(t, ref.get("trunk.level" + i)));
            Tensor f = features.fpnLevels().get(i);
            assertArrayEquals(TensorCheck.shapeOf(ref.get("fpn.level" + i)), TensorCheck.shapeOf(f), "fpn.level" + i);
            err.put("fpn.level" + i, Torch.relError(f, ref.get("fpn.level" + i)));
        }
        err.put("conv_s0", Torch.relError(features.featS0(), ref.get("conv_s0")));
        err.put("conv_s1", Torch.relError(features.featS1(), ref.get("conv_s1")));
        err.put("image_embed", Torch.relError(features.imageEmbedding(), ref.get("image_embed")));
        within(err, FP32_BOUND);
    }

    @Test
    void positionEncodingsMatchHf() {
        Map<String, Double> err = new LinkedHashMap<>();
        List<Tensor> pos = model.fpnPositionEncodings();
        for (int i = 0; i < 4; i++) {
            assertArrayEquals(TensorCheck.shapeOf(ref.get("fpn_pos.level" + i)), TensorCheck.shapeOf(pos.get(i)));
            err.put("fpn_pos.level" + i, Torch.relError(pos.get(i), ref.get("fpn_pos.level" + i)));
        }
        assertArrayEquals(TensorCheck.shapeOf(ref.get("dense_pe")), TensorCheck.shapeOf(model.densePositionEncoding()));
        err.put("dense_pe", Torch.relError(model.densePositionEncoding(), ref.get("dense_pe")));
        Tensor noMask = ref.get("dense_no_mask");
        err.put("dense_no_mask", Torch.relError(model.weights().get("sam_prompt_encoder.no_mask_embed.weight")
                .view(1, -1, 1, 1).expand_as(noMask), noMask));
        within(err, FP32_BOUND);
    }

    @Test
    void everyPromptKindMatchesHf() {
        Map<String, Double> err = new LinkedHashMap<>();
        List<String> selection = new ArrayList<>();
        for (var e : prompts(in).entrySet()) {
            String p = e.getKey();
            Sam2Output out = model.decode(features, e.getValue(), !p.equals("points_single"));
            err.put(p + ".sparse", Torch.relError(out.sparseTokens(), dropPointBatch(ref.get(p + ".sparse"),
                    out.sparseTokens())));
            err.put(p + ".masks", Torch.relError(out.masks(), dropPointBatch(ref.get(p + ".masks"), out.masks())));
            err.put(p + ".iou", Torch.relError(out.iou(), dropPointBatch(ref.get(p + ".iou"), out.iou())));
            err.put(p + ".object_score", Torch.relError(out.objectScore(), ref.get(p + ".object_score")
                    .reshape(out.objectScore().size(0), 1)));
            err.put(p + ".best_mask", Torch.relError(out.bestMask(), dropPointBatch(ref.get(p + ".best_mask"),
                    out.bestMask())));
            long[] want = Torch.toLongs(ref.get(p + ".best_index"));
            long[] got = Torch.toLongs(out.bestIndex());
            if (!Arrays.equals(want, got)) {
                selection.add(p + ": HF " + Arrays.toString(want) + ", Java " + Arrays.toString(got));
            }
        }
        assertTrue(selection.isEmpty(), "selected masks differ: " + selection);
        within(err, FP32_BOUND);
    }

    @Test
    void sa2vaUpsamplingMatchesHf() {
        Sam2Output out = model.decode(features, Sam2Prompt.language(in.get("lang_embed")));
        Map<String, Double> err = new LinkedHashMap<>();
        Tensor sq = out.upsampledSquare();
        assertArrayEquals(TensorCheck.shapeOf(ref.get("lang.upsampled_square")), TensorCheck.shapeOf(sq));
        err.put("lang.upsampled_square", Torch.relError(sq, ref.get("lang.upsampled_square")));
        for (int i = 0; i < 2; i++) {
            Tensor img = in.get("image." + i);
            Tensor up = out.upsampled(i, (int) img.size(0), (int) img.size(1));
            Tensor r = ref.get("lang.upsampled." + i);
            assertArrayEquals(TensorCheck.shapeOf(r), TensorCheck.shapeOf(up), "lang.upsampled." + i);
            err.put("lang.upsampled." + i, Torch.relError(up, r));
            // the mask is thresholded only on request, and then as sigmoid > p
            Tensor bin = Sam2Output.threshold(up, 0.5);
            assertEquals(ScalarType.Bool, Torch.dtype(bin));
            assertEquals(Torch.toLongs(r.gt(Nn.s(0)).sum()).length, 1);
            assertEquals(Torch.toLongs(r.sigmoid().gt(Nn.s(0.5)).sum())[0], Torch.toLongs(bin.sum())[0],
                    "pixels above p = 0.5, image " + i);
        }
        within(err, FP32_BOUND);
        Tensor prob = Sam2Output.probabilities(out.bestMask());
        assertTrue(Torch.toDoubles(prob.min())[0] >= 0 && Torch.toDoubles(prob.max())[0] <= 1);
    }

    @Test
    void featuresAreReusedUnchangedAcrossPrompts() {
        ImageFeatures f = model.encode(in.get("pixel_values"));
        Tensor before = f.imageEmbedding().clone(), s0 = f.featS0().clone(), s1 = f.featS1().clone();
        Sam2Prompt lang = Sam2Prompt.language(in.get("lang_embed"));
        Sam2Output first = model.decode(f, lang);
        for (Sam2Prompt p : prompts(in).values()) {
            model.decode(f, p);
        }
        Sam2Output again = model.decode(f, lang);
        assertEquals(0.0, Torch.relError(again.masks(), first.masks()), "same prompt, same features: same masks");
        assertEquals(0.0, Torch.relError(f.imageEmbedding(), before), "decoding must not modify the features");
        assertEquals(0.0, Torch.relError(f.featS0(), s0));
        assertEquals(0.0, Torch.relError(f.featS1(), s1));
    }

    @Test
    void oneImageManyPrompts() {
        // image 0 only, decoded with both language embeddings: row 0 is the reference prompt of image 0
        Tensor px0 = in.get("pixel_values").narrow(0, 0, 1);
        ImageFeatures f0 = model.encode(px0);
        Tensor lang = in.get("lang_embed");
        Sam2Output both = model.decode(f0, Sam2Prompt.language(lang));
        assertEquals(2, both.masks().size(0));
        Tensor refMasks = ref.get("lang.masks").narrow(0, 0, 1).reshape(1, 3, 32, 32);
        assertTrue(Torch.relError(both.masks().narrow(0, 0, 1), refMasks) <= FP32_BOUND);
        Sam2Output second = model.decode(f0, Sam2Prompt.language(lang.narrow(0, 1, 1)));
        assertTrue(Torch.relError(both.masks().narrow(0, 1, 1), second.masks()) <= 1e-6,
                "batched prompts against one image equal the prompts one at a time");
    }
}
