package dev.sa2va.eval;

import dev.sa2va.core.Devices;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.data.Sample;
import dev.sa2va.data.SampleSource;
import dev.sa2va.data.SizeMismatchException;
import dev.sa2va.io.ImageFiles;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Runs a {@link Segmenter} over a {@link SampleSource} one sample at a time and scores it: Dice, Recall, Precision
 * and IoU per sample through the fused mask kernel, optionally inside the field of view.
 *
 * <p>A sample that fails - unreadable file, size mismatch, a segmenter error, a bad map, or out of memory at every
 * memory level - is recorded as failed with its stage and reason, left out of the means, and the run goes on.
 * Out of memory is retried: the failed attempt's tensors are dropped (its {@code PointerScope} is closed), the
 * segmenter frees its caches ({@link Segmenter#releaseMemory}), and the sample is tried again per the
 * {@link RetryPolicy}.
 *
 * <p>Files written when an output folder is given: {@code per_sample.csv} (one row per sample, written as it
 * goes, so a killed run keeps its rows), {@code summary.json} ({@link EvaluationReport#toJson}) and
 * {@code overlays/NNNN_ID.png} ({@link Overlay}).
 */
public final class Evaluator {
    /**
     * What to do after an out-of-memory failure.
     *
     * @param sameLevelRetries retries at the same memory level (after freeing caches) before moving down a level;
     *                         helps when the failure came from fragmentation
     * @param sticky           keep using the lowest level reached for the following samples (fewer failed
     *                         attempts when memory is tight everywhere; otherwise each sample starts at level 0)
     */
    public record RetryPolicy(int sameLevelRetries, boolean sticky) {
        public RetryPolicy {
            if (sameLevelRetries < 0) {
                throw new IllegalArgumentException("sameLevelRetries must be >= 0, got " + sameLevelRetries);
            }
        }

        public static RetryPolicy defaults() {
            return new RetryPolicy(0, false);
        }
    }

    /**
     * @param threshold    probability threshold (0, 1); Sa2VA uses 0.5
     * @param insideFov    score only inside the field of view where a sample has one
     * @param outputDir    where to write the CSV, summary and overlays; null writes nothing
     * @param maxOverlays  overlay PNGs to write (first samples first); negative = all, 0 = none
     * @param retry        out-of-memory policy
     * @param progress     where the progress bar and summary go; null = silent
     * @param calibrate    also sweep thresholds ({@link ThresholdCalibration}) over the scored samples
     * @param recallWeight w of the Dice + w·Recall calibration objective
     */
    public record Options(double threshold, boolean insideFov, Path outputDir, int maxOverlays, RetryPolicy retry,
                          PrintStream progress, boolean calibrate, double recallWeight) {
        public Options {
            if (!(threshold > 0 && threshold < 1)) {
                throw new IllegalArgumentException("threshold must be inside (0, 1), got " + threshold);
            }
            if (retry == null) {
                retry = RetryPolicy.defaults();
            }
            if (!(recallWeight >= 0) || Double.isInfinite(recallWeight)) {
                throw new IllegalArgumentException("recallWeight must be finite and >= 0, got " + recallWeight);
            }
        }

        /** Threshold 0.5, inside the FOV, no files, all overlays, default retries, progress on stderr. */
        public static Options defaults() {
            return new Options(0.5, true, null, -1, RetryPolicy.defaults(), System.err, false, 0.5);
        }

        public Options withThreshold(double t) {
            return new Options(t, insideFov, outputDir, maxOverlays, retry, progress, calibrate, recallWeight);
        }

        public Options withInsideFov(boolean b) {
            return new Options(threshold, b, outputDir, maxOverlays, retry, progress, calibrate, recallWeight);
        }

        public Options withOutputDir(Path p) {
            return new Options(threshold, insideFov, p, maxOverlays, retry, progress, calibrate, recallWeight);
        }

        public Options withMaxOverlays(int n) {
            return new Options(threshold, insideFov, outputDir, n, retry, progress, calibrate, recallWeight);
        }

        public Options withRetry(RetryPolicy r) {
            return new Options(threshold, insideFov, outputDir, maxOverlays, r, progress, calibrate, recallWeight);
        }

        public Options withProgress(PrintStream p) {
            return new Options(threshold, insideFov, outputDir, maxOverlays, retry, p, calibrate, recallWeight);
        }

        public Options withCalibration(boolean on, double w) {
            return new Options(threshold, insideFov, outputDir, maxOverlays, retry, progress, on, w);
        }
    }

    static final String CSV_HEADER = "index,id,status,stage,dice,recall,precision,iou,specificity,accuracy,tp,fp,fn,tn,"
            + "region,width,height,attempts,memory_level,seconds,peak_cuda_mib,reason";

    private final Options o;

    public Evaluator(Options options) {
        this.o = options == null ? Options.defaults() : options;
    }

    public EvaluationReport run(SampleSource source, Segmenter segmenter) throws IOException {
        long start = System.nanoTime();
        int n = source.size();
        List<SampleResult> results = new ArrayList<>(n);
        ThresholdCalibration cal = o.calibrate() ? new ThresholdCalibration() : null;
        BufferedWriter csv = null;
        Path overlays = null;
        if (o.outputDir() != null) {
            Files.createDirectories(o.outputDir());
            csv = Files.newBufferedWriter(o.outputDir().resolve("per_sample.csv"), StandardCharsets.UTF_8);
            csv.write(CSV_HEADER);
            csv.newLine();
            csv.flush();
            if (o.maxOverlays() != 0) {
                overlays = o.outputDir().resolve("overlays");
                Files.createDirectories(overlays);
            }
        }
        boolean cuda = Devices.torchCudaAvailable();
        long peak = -1;
        Progress bar = new Progress(o.progress(), n);
        bar.update(0, 0);
        State st = new State();
        int failed = 0, overlaysWritten = 0;
        try {
            for (int i = 0; i < n; i++) {
                boolean wantOverlay = overlays != null && (o.maxOverlays() < 0 || overlaysWritten < o.maxOverlays());
                if (cuda) {
                    CudaMemory.resetPeaks(0);
                }
                SampleResult r = evaluateOne(source, segmenter, i, st, cal, wantOverlay ? overlays : null);
                if (cuda) {
                    r = r.withPeakCudaBytes(CudaMemory.peakAllocatedBytes(0));
                    peak = Math.max(peak, r.peakCudaBytes());
                }
                if (r.ok() && wantOverlay) {
                    overlaysWritten++;
                }
                results.add(r);
                if (!r.ok()) {
                    failed++;
                }
                if (csv != null) {
                    csv.write(csvRow(r));
                    csv.newLine();
                    csv.flush();
                }
                bar.update(i + 1, failed);
            }
        } finally {
            if (csv != null) {
                csv.close();
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        EvaluationReport report = new EvaluationReport(source.name(), segmenter.name(), o.threshold(), o.insideFov(),
                List.copyOf(results), st.oomRetries, seconds,
                cal != null && cal.samples() > 0 ? cal.result(o.recallWeight()) : null,
                peak);
        if (o.outputDir() != null) {
            Files.writeString(o.outputDir().resolve("summary.json"), report.toJsonString(), StandardCharsets.UTF_8);
        }
        if (o.progress() != null) {
            o.progress().print(report.toText());
            o.progress().flush();
        }
        return report;
    }

    /** Mutable run state shared across samples. */
    private static final class State {
        int oomRetries;
        int stickyLevel;
    }

    private SampleResult evaluateOne(SampleSource source, Segmenter seg, int i, State st, ThresholdCalibration cal,
                                     Path overlays) {
        long t0 = System.nanoTime();
        String id = safeId(source, i);
        try (PointerScope scope = new PointerScope()) {
            Sample s;
            try {
                s = source.load(i);
            } catch (SizeMismatchException e) {
                return SampleResult.failed(i, id, SampleResult.Stage.SIZE, e.getMessage(), -1, -1, 0, since(t0));
            } catch (IOException | RuntimeException e) {
                return SampleResult.failed(i, id, SampleResult.Stage.LOAD, message(e), -1, -1, 0, since(t0));
            }
            id = s.id();
            int w = s.width(), h = s.height();
            Segmenter.Input in = new Segmenter.Input(s.id(), s.imageId(), s.image(), s.text());

            // Segment, with out-of-memory retries. Each attempt, and the scoring of a successful one, runs in its
            // own scope: closing it frees what the attempt allocated, and only that (a map the segmenter owns
            // beyond the call is never attached to our scopes, so it is never freed by them).
            int level = o.retry().sticky() ? Math.min(st.stickyLevel, seg.memoryLevels() - 1) : 0;
            int attempts = 0, sameLevel = 0;
            while (true) {
                attempts++;
                Throwable failure = null;
                try (PointerScope attempt = new PointerScope()) {
                    Segmenter.Prediction p = null;
                    try {
                        p = seg.segment(in, level);
                    } catch (Exception | OutOfMemoryError e) {
                        failure = e;
                    }
                    if (failure == null) {
                        if (p == null) {
                            return SampleResult.failed(i, id, SampleResult.Stage.OUTPUT, "segmenter returned null", w,
                                    h, attempts, since(t0));
                        }
                        if (o.retry().sticky()) {
                            st.stickyLevel = Math.max(st.stickyLevel, level);
                        }
                        return score(i, s, p, attempts, level, t0, cal, overlays);
                    }
                }
                if (!OutOfMemoryFailure.matches(failure)) {
                    return SampleResult.failed(i, id, SampleResult.Stage.SEGMENTER, message(failure), w, h, attempts,
                            since(t0));
                }
                // the attempt's scope is closed: its tensors are gone, so the cache can really be freed
                seg.releaseMemory();
                if (failure instanceof OutOfMemoryError) {
                    System.gc();
                }
                if (sameLevel < o.retry().sameLevelRetries()) {
                    sameLevel++;
                } else if (level + 1 < seg.memoryLevels()) {
                    level++;
                    sameLevel = 0;
                } else {
                    return SampleResult.failed(i, id, SampleResult.Stage.OUT_OF_MEMORY, "out of memory at every memory "
                            + "level (" + levels(seg) + "), " + attempts + " attempts; last: " + message(failure), w, h,
                            attempts, since(t0));
                }
                st.oomRetries++;
            }
        } catch (RuntimeException e) {
            // scoring itself failed (e.g. a device error): still one failed sample, not a failed run
            return SampleResult.failed(i, id, SampleResult.Stage.OUTPUT, "scoring failed: " + message(e), -1, -1, 0,
                    since(t0));
        }
    }

    /** Checks and scores one prediction (and adds it to the calibration, writes its overlay). */
    private SampleResult score(int i, Sample s, Segmenter.Prediction pred, int attempts, int level, long t0,
                               ThresholdCalibration cal, Path overlays) {
        String id = s.id();
        int w = s.width(), h = s.height();
        Tensor map = pred.map();
        String bad = checkMap(map, pred.kind(), w, h);
        if (bad != null) {
            return SampleResult.failed(i, id, SampleResult.Stage.OUTPUT, bad, w, h, attempts, since(t0));
        }
        map = map.reshape(h, w);
        boolean roi = o.insideFov() && s.fov() != null;
        RegionOfInterest.Prepared prep = RegionOfInterest.prepare(map, s.mask(), roi ? s.fov() : null);
        if (prep.outside() == (long) w * h) {
            // nothing to score: counting would report a perfect empty-vs-empty match
            return SampleResult.failed(i, id, SampleResult.Stage.LOAD, "the field-of-view mask is empty", w, h,
                    attempts, since(t0));
        }
        double cutoff = pred.cutoff(o.threshold());
        long[] c = prep.counts(cutoff);
        if (cal != null) {
            cal.add(prep, pred.kind());
        }
        if (overlays != null) {
            Tensor predicted = map.gt(Torch.scalar(cutoff)).cpu();
            Tensor img = Overlay.render(s.image(), predicted, s.mask(), s.fov());
            Path f = overlays.resolve(String.format(Locale.ROOT, "%04d_%s.png", i, fileSafe(id)));
            try {
                ImageFiles.write(ImageFiles.rgbImage(img), f);
            } catch (IOException e) {
                if (o.progress() != null) {
                    o.progress().println("\nwarning: overlay not written: " + e.getMessage());
                }
            }
        }
        return new SampleResult(i, id, SampleResult.Stage.SCORED, "", c[0], c[1], c[2], c[3], roi, w, h, attempts,
                level, since(t0), -1);
    }

    /** Why a map cannot be scored, or null when it can. */
    static String checkMap(Tensor map, Segmenter.MapKind kind, int w, int h) {
        long[] shape = TensorCheck.shapeOf(map);
        boolean ok = shape.length >= 2 && shape[shape.length - 2] == h && shape[shape.length - 1] == w;
        for (int d = 0; ok && d < shape.length - 2; d++) {
            ok = shape[d] == 1;
        }
        if (!ok) {
            return "size mismatch: segmenter returned a map of shape " + TensorCheck.shapeString(map) + " for a " + w
                    + "x" + h + " image (expected [" + h + ", " + w + "])";
        }
        Tensor f = map.to(ScalarType.Float);
        if (f.isnan().any().item().toBool()) {
            return "segmenter map contains NaN";
        }
        if (kind == Segmenter.MapKind.PROBABILITY) {
            double min = f.min().item().toDouble(), max = f.max().item().toDouble();
            if (min < 0 || max > 1) {
                return String.format(Locale.ROOT, "segmenter declared probabilities but the map spans [%g, %g] "
                        + "(logits declared as probabilities?)", min, max);
            }
        }
        return null;
    }

    private static String levels(Segmenter seg) {
        StringBuilder b = new StringBuilder();
        for (int l = 0; l < seg.memoryLevels(); l++) {
            b.append(l == 0 ? "" : ", ").append(seg.describeLevel(l));
        }
        return b.toString();
    }

    private static String safeId(SampleSource source, int i) {
        try {
            return source.id(i);
        } catch (RuntimeException e) {
            return "#" + i;
        }
    }

    private static String message(Throwable e) {
        String m = e.getMessage();
        String first = m == null ? "" : m.strip().lines().findFirst().orElse("");
        return e.getClass().getSimpleName() + (first.isEmpty() ? "" : ": " + first);
    }

    private static double since(long t0) {
        return (System.nanoTime() - t0) / 1e9;
    }

    static String fileSafe(String id) {
        String s = id.replaceAll("[^A-Za-z0-9._-]", "_");
        return s.length() > 80 ? s.substring(0, 80) : s;
    }

    static String csvRow(SampleResult r) {
        StringBuilder b = new StringBuilder();
        b.append(r.index()).append(',').append(csv(r.id())).append(',').append(r.ok() ? "ok" : "failed").append(',')
                .append(r.stage().name().toLowerCase(Locale.ROOT)).append(',');
        if (r.ok()) {
            for (double v : new double[] {r.dice(), r.recall(), r.precision(), r.iou(), r.specificity(),
                r.accuracy()}) {
                b.append(String.format(Locale.ROOT, "%.6f", v)).append(',');
            }
            b.append(r.tp()).append(',').append(r.fp()).append(',').append(r.fn()).append(',').append(r.tn()).append(',')
                    .append(r.insideFov() ? "fov" : "image").append(',');
        } else {
            b.append(",,,,,,,,,,,");
        }
        b.append(r.width() < 0 ? "" : r.width()).append(',').append(r.height() < 0 ? "" : r.height()).append(',')
                .append(r.attempts()).append(',').append(r.level() < 0 ? "" : r.level()).append(',')
                .append(String.format(Locale.ROOT, "%.3f", r.seconds())).append(',')
                .append(r.peakCudaBytes() < 0 ? "" : String.format(Locale.ROOT, "%.1f", r.peakCudaBytes() / 1048576.0))
                .append(',').append(csv(r.reason()));
        return b.toString();
    }

    /** RFC 4180 quoting. */
    static String csv(String s) {
        if (s == null) {
            return "";
        }
        if (s.indexOf(',') < 0 && s.indexOf('"') < 0 && s.indexOf('\n') < 0 && s.indexOf('\r') < 0) {
            return s;
        }
        return '"' + s.replace("\"", "\"\"") + '"';
    }
}
