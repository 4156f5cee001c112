package dev.sa2va.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.data.Sample;
import dev.sa2va.data.SampleSource;
import dev.sa2va.data.SyntheticFundus;
import dev.sa2va.data.SyntheticSource;
import dev.sa2va.eval.EvaluationReport;
import dev.sa2va.eval.Evaluator;
import dev.sa2va.eval.SampleResult;
import dev.sa2va.eval.Segmenter;
import dev.sa2va.metrics.MaskMetrics;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Sa2VA through the evaluation harness on a few synthetic images (tiny checkpoint, CPU). */
class Sa2vaSegmenterTest {
    @TempDir
    static Path tmp;
    static Sa2VA model;

    @BeforeAll
    static void load() throws Exception {
        model = Sa2VA.load(TinySa2va.write(tmp.resolve("tiny"), 21), Sa2VA.Options.defaults().withDevice("cpu"));
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    static Evaluator.Options quiet(Path out) {
        return Evaluator.Options.defaults().withProgress(null).withOutputDir(out).withMaxOverlays(1);
    }

    @Test
    void evaluatesSyntheticImagesAndScoresTheMaskItReturns() throws Exception {
        SyntheticSource src = new SyntheticSource(SyntheticFundus.Config.defaults().withSize(96, 80), 5, 3);
        Path out = tmp.resolve("eval");
        Sa2vaSegmenter seg = new Sa2vaSegmenter(model, false, Generation.forced("Sure, [SEG]."), null, null);
        EvaluationReport r = new Evaluator(quiet(out)).run(src, seg);
        assertEquals(3, r.evaluated(), r.toText());
        assertEquals(0, r.failed());
        assertTrue(r.segmenter().contains("forced answer"), r.segmenter());
        assertEquals(4, Files.readAllLines(out.resolve("per_sample.csv")).size());
        assertTrue(Files.isRegularFile(out.resolve("summary.json")));
        // the harness scored exactly the mask the model returns for that prompt (inside the field of view)
        try (PointerScope s = new PointerScope()) {
            Sample s0 = src.load(0);
            Segmentation direct = model.segment(model.prepare(s0.image(), 12), seg.prompt(s0.text()),
                    Generation.forced("Sure, [SEG]."));
            Tensor inFov = s0.fov().to(org.bytedeco.pytorch.global.torch.ScalarType.Bool);
            Tensor logits = direct.mask().logits().masked_fill(inFov.logical_not(), new org.bytedeco.pytorch.Scalar(-1e9));
            Tensor truth = s0.mask().logical_and(inFov).to(org.bytedeco.pytorch.global.torch.ScalarType.Byte);
            long[] c = dev.sa2va.core.Torch.toLongs(MaskMetrics.confusion(logits.unsqueeze(0), truth.unsqueeze(0), 0.0));
            SampleResult r0 = r.results().get(0);
            assertEquals(c[0], r0.tp());
            assertEquals(c[1], r0.fp());
            assertEquals(c[2], r0.fn());
        }
        assertTrue(seg.stats().startsWith("3 images prepared, 3 prompts"), seg.stats());
    }

    @Test
    void promptsOnOneImageShareItsFeatures() throws Exception {
        Sample base = new SyntheticSource(SyntheticFundus.Config.defaults().withSize(72, 64), 9, 1).load(0);
        List<String> texts = List.of("blood vessels", "the optic disc", "thin vessels");
        SampleSource three = new SampleSource() {
            @Override
            public String name() {
                return "three prompts";
            }

            @Override
            public int size() {
                return 3;
            }

            @Override
            public String id(int i) {
                return "s" + i;
            }

            @Override
            public Sample load(int i) {
                return new Sample("s" + i, "one-image", base.image(), base.mask(), null, texts.get(i));
            }
        };
        Sa2vaSegmenter seg = new Sa2vaSegmenter(model, false, Generation.forced("Sure, [SEG]."), null, null);
        EvaluationReport r = new Evaluator(quiet(null)).run(three, seg);
        assertEquals(3, r.evaluated());
        assertTrue(seg.stats().startsWith("1 images prepared, 3 prompts"), seg.stats());
        seg.releaseMemory();
        new Evaluator(quiet(null)).run(three, seg);
        assertTrue(seg.stats().startsWith("2 images prepared, 6 prompts"), seg.stats());
    }

    @Test
    void anAnswerWithoutSegFailsTheSampleInsteadOfScoringIt() throws Exception {
        SyntheticSource src = new SyntheticSource(SyntheticFundus.Config.defaults().withSize(64, 64), 5, 2);
        Sa2vaSegmenter seg = new Sa2vaSegmenter(model, false, Generation.forced("I cannot."), null, null);
        EvaluationReport r = new Evaluator(quiet(null)).run(src, seg);
        assertEquals(0, r.evaluated());
        assertEquals(2, r.failed());
        for (SampleResult s : r.results()) {
            assertEquals(SampleResult.Stage.SEGMENTER, s.stage());
            assertTrue(s.reason().contains("[SEG]") && s.reason().contains("I cannot."), s.reason());
        }
    }

    @Test
    void memoryLevelsAreTileLimits() {
        Sa2vaSegmenter seg = new Sa2vaSegmenter(model, false, Generation.forced("[SEG]"), "Find {}.", new int[] {12, 4, 1});
        assertEquals(3, seg.memoryLevels());
        assertEquals("at most 4 tiles", seg.describeLevel(1));
        assertEquals("at most 1 tile", seg.describeLevel(2));
        assertEquals("Find vessels.", seg.prompt("vessels"));
        assertArrayEquals(new int[] {12, 6, 1}, Sa2vaSegmenter.defaultLevels(12));
        assertArrayEquals(new int[] {2, 1}, Sa2vaSegmenter.defaultLevels(2));
        assertThrows(IllegalArgumentException.class,
                () -> new Sa2vaSegmenter(model, false, null, "no placeholder", null));
        assertThrows(IllegalArgumentException.class,
                () -> new Sa2vaSegmenter(model, false, null, null, new int[] {4, 6}));
        try (PointerScope s = new PointerScope()) {
            Sample x = new SyntheticSource(SyntheticFundus.Config.defaults().withSize(200, 100), 2, 1).load(0);
            Segmenter.Input in = new Segmenter.Input("x", "x", x.image(), "vessels");
            Segmenter.Prediction p0 = seg.segment(in, 0), p2 = seg.segment(in, 2);
            assertArrayEquals(new long[] {100, 200}, dev.sa2va.core.TensorCheck.shapeOf(p2.map()));
            assertTrue(dev.sa2va.core.Torch.relError(p0.map(), p2.map()) > 0, "1 tile vs a grid should differ");
        }
    }
}
