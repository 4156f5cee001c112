package dev.sa2va.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sa2va.core.Torch;
import dev.sa2va.data.DriveLayoutWriter;
import dev.sa2va.data.Sample;
import dev.sa2va.data.SampleSource;
import dev.sa2va.data.SyntheticFundus;
import dev.sa2va.data.SyntheticSource;
import dev.sa2va.data.VesselDatasets;
import dev.sa2va.io.ImageFiles;
import dev.sa2va.metrics.MaskMetrics;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The evaluation harness on a synthetic DRIVE folder with a fake segmenter that fails on chosen samples. */
class EvaluatorTest {
    static final SyntheticFundus.Config CFG = SyntheticFundus.Config.defaults().withSize(64, 64);

    @TempDir
    Path dir;

    /** {TP, FP, FN, TN} of {@code score > cutoff} against the mask, inside the FOV when given: plain torch ops. */
    static long[] reference(Tensor score, Tensor mask, Tensor fov, double cutoff) {
        Tensor pr = score.gt(Torch.scalar(cutoff));
        Tensor gt = mask.ne(Torch.scalar(0L));
        Tensor in = fov == null ? gt.logical_or(gt.logical_not()) : fov.ne(Torch.scalar(0L));
        long tp = count(pr.logical_and(gt).logical_and(in));
        long fp = count(pr.logical_and(gt.logical_not()).logical_and(in));
        long fn = count(pr.logical_not().logical_and(gt).logical_and(in));
        long tn = count(pr.logical_not().logical_and(gt.logical_not()).logical_and(in));
        return new long[] {tp, fp, fn, tn};
    }

    static long count(Tensor b) {
        return Torch.toLongs(b.count_nonzero())[0];
    }

    static Tensor logitMap(Tensor mask) {
        return torch.logit(FakeSegmenter.map(mask).clamp(new org.bytedeco.pytorch.ScalarOptional(Torch.scalar(1e-6)),
                new org.bytedeco.pytorch.ScalarOptional(Torch.scalar(1 - 1e-6))));
    }

    @Test
    void failedSamplesAreListedWithReasonsAndLeftOutOfTheMeans() throws IOException {
        Path data = dir.resolve("DRIVE");
        DriveLayoutWriter.write(new SyntheticSource(CFG, 11, 12), data, "test", null);
        Files.writeString(data.resolve("test/images/02_test.tif"), "not a tiff");
        ImageFiles.write(ImageFiles.maskImage(new SyntheticSource(CFG.withSize(40, 40), 1, 1).load(0).mask()),
                data.resolve("test/1st_manual/03_manual1.gif"));
        SampleSource src = VesselDatasets.open(data, VesselDatasets.Layout.AUTO, VesselDatasets.Options.defaults());
        Map<String, Sample> samples = new HashMap<>();
        Map<String, Tensor> truth = new HashMap<>();
        for (int i = 0; i < src.size(); i++) {
            if (i != 1 && i != 2) {
                Sample s = src.load(i);
                samples.put(s.id(), s);
                truth.put(s.id(), s.mask());
            }
        }
        FakeSegmenter seg = new FakeSegmenter(truth, 3)
                .fail("04_test", FakeSegmenter.Fault.OOM_ONCE)
                .fail("05_test", FakeSegmenter.Fault.OOM_ALWAYS)
                .fail("06_test", FakeSegmenter.Fault.THROW)
                .fail("07_test", FakeSegmenter.Fault.WRONG_SIZE)
                .fail("08_test", FakeSegmenter.Fault.NAN)
                .fail("09_test", FakeSegmenter.Fault.OUT_OF_RANGE)
                .fail("10_test", FakeSegmenter.Fault.LOGITS)
                .fail("11_test", FakeSegmenter.Fault.REAL_OOM_ONCE);
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        Path out = dir.resolve("out");
        EvaluationReport r = new Evaluator(Evaluator.Options.defaults().withOutputDir(out)
                .withProgress(new PrintStream(console, true, StandardCharsets.UTF_8))).run(src, seg);

        assertEquals(12, r.results().size());
        assertEquals(5, r.evaluated());
        assertEquals(7, r.failed());
        Map<String, SampleResult.Stage> stages = new HashMap<>();
        r.results().forEach(x -> stages.put(x.id(), x.stage()));
        assertEquals(SampleResult.Stage.LOAD, stages.get("02_test"));
        assertEquals(SampleResult.Stage.SIZE, stages.get("03_test"));
        assertEquals(SampleResult.Stage.SCORED, stages.get("04_test"));
        assertEquals(SampleResult.Stage.OUT_OF_MEMORY, stages.get("05_test"));
        assertEquals(SampleResult.Stage.SEGMENTER, stages.get("06_test"));
        assertEquals(SampleResult.Stage.OUTPUT, stages.get("07_test"));
        assertEquals(SampleResult.Stage.OUTPUT, stages.get("08_test"));
        assertEquals(SampleResult.Stage.OUTPUT, stages.get("09_test"));
        assertEquals(SampleResult.Stage.SCORED, stages.get("10_test"));
        assertEquals(SampleResult.Stage.SCORED, stages.get("11_test"));
        SampleResult r02 = r.results().get(1), r04 = r.results().get(3), r05 = r.results().get(4);
        assertTrue(r02.reason().contains("02_test.tif"), r02.reason());
        assertTrue(r.results().get(2).reason().contains("40x40"), r.results().get(2).reason());
        assertEquals(2, r04.attempts());
        assertEquals(1, r04.level());
        assertEquals(3, r05.attempts());
        assertTrue(r05.reason().startsWith("out of memory at every memory level"), r05.reason());
        assertTrue(r.results().get(5).reason().contains("model exploded"), r.results().get(5).reason());
        assertTrue(r.results().get(6).reason().contains("[63, 64]"), r.results().get(6).reason());
        assertTrue(r.results().get(7).reason().contains("NaN"), r.results().get(7).reason());
        assertTrue(r.results().get(8).reason().contains("probabilities"), r.results().get(8).reason());
        assertEquals(1, r.results().get(10).level()); // a real libtorch allocation failure, retried at level 1
        // OOM events: 04 once, 05 at each of 3 levels, 11 once; retries: all but 05's last
        assertEquals(5, seg.releases);
        assertEquals(4, r.outOfMemoryRetries());
        assertEquals(2, r.degraded());

        // every scored sample's counts against plain torch ops, inside the FOV; means over those 5 only
        double diceSum = 0;
        for (SampleResult x : r.results()) {
            if (!x.ok()) {
                assertTrue(Double.isNaN(x.dice()));
                continue;
            }
            Sample s = samples.get(x.id());
            Tensor score = x.id().equals("10_test") ? logitMap(s.mask()) : FakeSegmenter.map(s.mask());
            long[] want = reference(score, s.mask(), s.fov(), x.id().equals("10_test") ? 0.0 : 0.5);
            assertArrayEquals(want, new long[] {x.tp(), x.fp(), x.fn(), x.tn()}, x.id());
            assertTrue(x.insideFov());
            assertTrue(x.fp() > 0 && x.fn() > 0 && x.tp() > 0, "a non-trivial prediction: " + x);
            diceSum += new MaskMetrics.Scores(want[0], want[1], want[2], want[3]).dice();
        }
        assertEquals(diceSum / 5, r.dice().mean(), 1e-12);
        assertEquals(5, r.dice().n());

        // files
        List<String> csv = Files.readAllLines(out.resolve("per_sample.csv"));
        assertEquals(13, csv.size());
        assertEquals(Evaluator.CSV_HEADER, csv.get(0));
        assertTrue(csv.get(2).startsWith("1,02_test,failed,load,,,,,,,,,,,,"), csv.get(2));
        assertTrue(csv.get(4).startsWith("3,04_test,ok,scored,"), csv.get(4));
        assertTrue(csv.get(4).contains(",fov,64,64,2,1,"), csv.get(4));
        assertTrue(csv.get(6).endsWith(",IllegalStateException: model exploded"), csv.get(6)); // first line only
        JsonObject sum = JsonParser.parseString(Files.readString(out.resolve("summary.json"))).getAsJsonObject();
        assertEquals(12, sum.get("samples").getAsInt());
        assertEquals(5, sum.get("evaluated").getAsInt());
        assertEquals(7, sum.get("failed").getAsInt());
        assertEquals(4, sum.get("out_of_memory_retries").getAsInt());
        assertEquals(r.dice().mean(), sum.getAsJsonObject("metrics").getAsJsonObject("dice").get("mean").getAsDouble(),
                1e-15);
        JsonArray failures = sum.getAsJsonArray("failures");
        assertEquals(7, failures.size());
        assertEquals("out_of_memory", failures.get(2).getAsJsonObject().get("stage").getAsString());
        try (Stream<Path> s = Files.list(out.resolve("overlays"))) {
            assertEquals(List.of("0000_01_test.png", "0003_04_test.png", "0009_10_test.png", "0010_11_test.png",
                    "0011_12_test.png"), s.map(p -> p.getFileName().toString()).sorted().toList());
        }
        String text = console.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains("12/12") && text.contains("failed 7"), text);
        assertTrue(text.contains("samples 12, evaluated 5, failed 7"), text);
    }

    @Test
    void wholeImageOrInsideFovAndThresholds() throws IOException {
        SyntheticSource src = new SyntheticSource(CFG, 2, 3);
        Map<String, Tensor> truth = new HashMap<>();
        for (int i = 0; i < 3; i++) {
            truth.put(src.id(i), src.load(i).mask());
        }
        Sample s0 = src.load(0);
        for (boolean fov : new boolean[] {true, false}) {
            for (double t : new double[] {0.3, 0.5, 0.72}) {
                EvaluationReport r = new Evaluator(Evaluator.Options.defaults().withProgress(null).withInsideFov(fov)
                        .withThreshold(t)).run(src, new FakeSegmenter(truth, 1));
                SampleResult x = r.results().get(0);
                long[] want = reference(FakeSegmenter.map(s0.mask()), s0.mask(), fov ? s0.fov() : null, t);
                assertArrayEquals(want, new long[] {x.tp(), x.fp(), x.fn(), x.tn()}, "fov " + fov + " t " + t);
                long pixels = fov ? count(s0.fov().ne(Torch.scalar(0L))) : 64 * 64;
                assertEquals(pixels, x.tp() + x.fp() + x.fn() + x.tn());
            }
        }
    }

    /** A segmenter may return tensors it keeps (cached features, a fixed map): the harness must not free them. */
    @Test
    void mapsOwnedByTheSegmenterSurviveTheRun() throws IOException {
        SyntheticSource src = new SyntheticSource(CFG, 6, 3);
        Tensor kept = FakeSegmenter.map(src.load(0).mask()); // made outside any PointerScope, owned by the segmenter
        double sum = kept.sum().item().toDouble();
        Segmenter fixed = new Segmenter() {
            @Override
            public String name() {
                return "fixed";
            }

            @Override
            public Prediction segment(Input in, int level) {
                return Prediction.probabilities(kept);
            }
        };
        Evaluator ev = new Evaluator(Evaluator.Options.defaults().withProgress(null));
        EvaluationReport first = ev.run(src, fixed), second = ev.run(src, fixed);
        assertEquals(3, first.evaluated());
        assertEquals(3, second.evaluated(), second.toText());
        assertEquals(first.dice().mean(), second.dice().mean());
        assertEquals(sum, kept.sum().item().toDouble());
    }

    @Test
    void anEmptyFieldOfViewFailsTheSampleInsteadOfScoringIt() throws IOException {
        SyntheticSource inner = new SyntheticSource(CFG, 4, 2);
        SampleSource src = new SampleSource() {
            @Override
            public String name() {
                return "empty fov";
            }

            @Override
            public int size() {
                return 2;
            }

            @Override
            public String id(int i) {
                return inner.id(i);
            }

            @Override
            public Sample load(int i) {
                Sample s = inner.load(i);
                return i == 0 ? s : new Sample(s.id(), s.imageId(), s.image(), s.mask(), s.fov().mul(Torch.scalar(0L)),
                        s.text());
            }
        };
        Map<String, Tensor> truth = new HashMap<>();
        for (int i = 0; i < 2; i++) {
            truth.put(inner.id(i), inner.load(i).mask());
        }
        EvaluationReport r = new Evaluator(Evaluator.Options.defaults().withProgress(null))
                .run(src, new FakeSegmenter(truth, 1));
        assertEquals(1, r.evaluated());
        assertEquals("the field-of-view mask is empty", r.results().get(1).reason());
        // scored over the whole image instead, it is an ordinary sample
        assertEquals(2, new Evaluator(Evaluator.Options.defaults().withProgress(null).withInsideFov(false))
                .run(src, new FakeSegmenter(truth, 1)).evaluated());
    }

    @Test
    void retryPolicySameLevelAndSticky() throws IOException {
        SyntheticSource src = new SyntheticSource(CFG, 3, 3);
        Map<String, Tensor> truth = new HashMap<>();
        for (int i = 0; i < 3; i++) {
            truth.put(src.id(i), src.load(i).mask());
        }
        // one retry at the same level first: the fake fails at level 0 every time, so 0, 0, then 1
        FakeSegmenter a = new FakeSegmenter(truth, 2).fail("synthetic_0001", FakeSegmenter.Fault.OOM_ONCE);
        new Evaluator(Evaluator.Options.defaults().withProgress(null).withRetry(new Evaluator.RetryPolicy(1, false)))
                .run(src, a);
        assertEquals(List.of("synthetic_0001@0", "synthetic_0001@0", "synthetic_0001@1", "synthetic_0002@0",
                "synthetic_0003@0"), a.calls);
        // sticky: after the fallback, the next samples start at level 1
        FakeSegmenter b = new FakeSegmenter(truth, 2).fail("synthetic_0001", FakeSegmenter.Fault.OOM_ONCE);
        EvaluationReport r = new Evaluator(Evaluator.Options.defaults().withProgress(null)
                .withRetry(new Evaluator.RetryPolicy(0, true))).run(src, b);
        assertEquals(List.of("synthetic_0001@0", "synthetic_0001@1", "synthetic_0002@1", "synthetic_0003@1"), b.calls);
        assertEquals(3, r.degraded());
    }

    @Test
    void cudaMemoryHelpersAreHarmlessWithoutCuda() {
        org.junit.jupiter.api.Assumptions.assumeFalse(dev.sa2va.core.Devices.torchCudaAvailable(), "CPU-only check");
        CudaMemory.releaseCachedMemory();
        CudaMemory.resetPeaks(0);
        assertEquals(-1, CudaMemory.peakAllocatedBytes(0));
        assertEquals(-1, CudaMemory.totalBytes(0));
        org.junit.jupiter.api.Assertions.assertThrows(UnsupportedOperationException.class,
                () -> CudaMemory.capBytes(0, 1L << 30));
    }

    @Test
    void reportStatisticsAndCsvQuoting() {
        double[] v = {0.2, 0.4, 0.9};
        EvaluationReport.Stat s = EvaluationReport.Stat.of(v);
        assertEquals(0.5, s.mean(), 1e-15);
        assertEquals(Math.sqrt(((0.09 + 0.01 + 0.16) / 2)), s.std(), 1e-15);
        assertEquals(0.4, s.median());
        assertTrue(Double.isNaN(EvaluationReport.Stat.of(new double[] {0.3}).std()));
        assertEquals("\"a,\"\"b\"\"\"", Evaluator.csv("a,\"b\""));
        assertEquals("plain", Evaluator.csv("plain"));
        assertEquals("a_b_c.png", Evaluator.fileSafe("a/b c.png"));
        assertNull(Evaluator.checkMap(Torch.zeros(ScalarType.Float, dev.sa2va.core.Devices.cpu(), 1, 4, 5),
                Segmenter.MapKind.PROBABILITY, 5, 4));
    }

    @Test
    void progressLineShowsRateAndEta() {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        Progress p = new Progress(new PrintStream(b, true, StandardCharsets.UTF_8), 20, false);
        for (int i = 0; i <= 20; i++) {
            p.update(i, i / 7);
        }
        String[] lines = b.toString(StandardCharsets.UTF_8).split("\n");
        assertEquals(11, lines.length, "one line per 10% when not on a terminal"); // 0%, 10%, ..., 100%
        assertTrue(lines[10].startsWith("[==============================] 20/20 100%"), lines[10]);
        assertTrue(lines[10].contains("ETA 00:00") && lines[10].contains("failed 2"), lines[10]);
        assertEquals("1:01:05", Progress.clock(3665));
        assertEquals("02:05", Progress.clock(125));
    }
}
