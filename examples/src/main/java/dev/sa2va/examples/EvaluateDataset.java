package dev.sa2va.examples;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.data.DriveLayoutWriter;
import dev.sa2va.data.Prefetching;
import dev.sa2va.data.SampleSource;
import dev.sa2va.data.SyntheticFundus;
import dev.sa2va.data.SyntheticSource;
import dev.sa2va.data.VesselDatasets;
import dev.sa2va.eval.CudaMemory;
import dev.sa2va.eval.EvaluationReport;
import dev.sa2va.eval.Evaluator;
import dev.sa2va.eval.FrangiVesselness;
import dev.sa2va.eval.Segmenter;
import dev.sa2va.model.Generation;
import dev.sa2va.model.Sa2VA;
import dev.sa2va.model.Sa2vaSegmenter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;
import org.bytedeco.pytorch.Device;

/**
 * Evaluates a segmenter on a dataset folder: per-sample Dice / Recall / Precision / IoU (inside the field of view
 * where the dataset has one), a CSV, a summary JSON, overlay PNGs and a progress bar.
 *
 * <pre>
 * mvn -q -DskipTests -pl examples -am package exec:java -Dexample.main=dev.sa2va.examples.EvaluateDataset \
 *     -Dexec.args="path/to/DRIVE --out eval-out --calibrate"
 * </pre>
 * With no dataset path it first writes 8 synthetic images in the DRIVE layout to {@code eval-out/data} and
 * evaluates those. The segmenter is the Frangi vesselness baseline ({@link FrangiVesselness}); Sa2VA plugs in
 * through {@link Segmenter}.
 *
 * <p>Options: {@code --layout auto|drive|chase_db1|stare|hrf|fives|folders|sa2va}, {@code --split},
 * {@code --annotator 1|2}, {@code --text "blood vessels"}, {@code --estimate-fov} (for datasets without FOV masks),
 * {@code --whole-image} (score all pixels), {@code --threshold 0.5}, {@code --out DIR}, {@code --overlays N}
 * (-1 = all), {@code --calibrate} (threshold sweep), {@code --recall-weight W}, {@code --device cpu|cuda};
 * {@code --synthetic N --size WxH --seed S} evaluates N generated images without writing them;
 * {@code --prefetch T} loads ahead on T threads (default min(4, cores − 1), 0 = off);
 * {@code --cuda-memory-cap-gb G} caps torch's CUDA caching allocator (e.g. 24 to stand for a 24 GB card).
 *
 * <p>Sa2VA: {@code --segmenter sa2va --model DIR} (or {@code --model random:sa2va-1b|random:sa2va-4b|random:tiny} for
 * random weights at those dimensions, built on the device), with {@code --prompt "<image>\n Please segment {} in this
 * image."} (Sa2VA's evaluation prompt; {} = the sample's text), {@code --force-answer "Sure, [SEG]."} (teacher-forced
 * answer, needed with random weights), {@code --max-new-tokens N}, {@code --max-tiles N} (12; out-of-memory retries
 * use 6, then 1), {@code --dtype bf16|fp32}, {@code --byte-tokenizer} (a model folder without tokenizer.json: random-
 * weight test checkpoints only). Prints peak CUDA memory, allocator out-of-memory events and preprocessing time.
 */
public final class EvaluateDataset {
    /**
     * Adds what the harness does not know to summary.json: the CUDA allocator's state at the end (reserved bytes,
     * out-of-memory events, the cap) and the segmenter's own statistics.
     */
    static void addRunInfo(Path summary, Segmenter seg, boolean cuda, double capGb) throws java.io.IOException {
        if (!Files.isRegularFile(summary)) {
            return;
        }
        com.google.gson.JsonObject o = com.google.gson.JsonParser.parseString(Files.readString(summary)).getAsJsonObject();
        com.google.gson.JsonObject run = new com.google.gson.JsonObject();
        if (cuda) {
            run.addProperty("cuda_memory_cap_gib", capGb > 0 ? capGb : null);
            run.addProperty("cuda_total_bytes", CudaMemory.totalBytes(0));
            run.addProperty("cuda_reserved_bytes_at_end", CudaMemory.reservedBytes(0));
            run.addProperty("cuda_allocator_out_of_memory_events", CudaMemory.outOfMemoryCount(0));
        }
        if (seg instanceof Sa2vaSegmenter s) {
            run.addProperty("sa2va", s.stats());
        }
        o.add("run", run);
        Files.writeString(summary, new com.google.gson.GsonBuilder().setPrettyPrinting().serializeNulls()
                .disableHtmlEscaping().create().toJson(o) + "\n");
    }

    /** The Sa2VA segmenter of the command line (it owns the model). */
    static Segmenter sa2va(Args a, String dev) throws java.io.IOException {
        String spec = a.get("model", null);
        if (spec == null) {
            throw new IllegalArgumentException("--segmenter sa2va needs --model DIR (or random:sa2va-1b, random:sa2va-4b, "
                    + "random:tiny)");
        }
        Sa2VA.Options o = SegmentImage.options(a).withDevice(dev.equals("cuda") ? "cuda:0" : dev);
        long t0 = System.nanoTime();
        Sa2VA model = ModelSpec.open(spec, o, a.flag("byte-tokenizer"));
        System.err.printf(Locale.ROOT, "model %s ready in %.1f s%n", model.describe(), (System.nanoTime() - t0) / 1e9);
        String forced = a.get("force-answer", null);
        Generation g = (forced != null ? Generation.forced(forced) : Generation.defaults())
                .withMaxNewTokens(a.integer("max-new-tokens", Generation.SA2VA_MAX_NEW_TOKENS));
        return new Sa2vaSegmenter(model, true, g, a.get("prompt", null), null);
    }

    public static void main(String[] argv) throws Exception {
        Args a;
        try {
            a = new Args(argv, Set.of("estimate-fov", "whole-image", "calibrate", "byte-tokenizer"), Set.of("layout",
                    "split", "annotator", "text", "threshold", "out", "overlays", "recall-weight", "device", "segmenter",
                    "synthetic", "size", "seed", "prefetch", "cuda-memory-cap-gb", "model", "prompt", "force-answer",
                    "max-new-tokens", "max-tiles", "dtype"));
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.err.println("usage: EvaluateDataset [DATASET] [--layout L] [--split S] [--annotator 1|2] "
                    + "[--text T] [--estimate-fov] [--whole-image] [--threshold T] [--out DIR] [--overlays N] "
                    + "[--calibrate] [--recall-weight W] [--device cpu|cuda] [--segmenter frangi|sa2va] "
                    + "[--synthetic N --size WxH --seed S] [--prefetch THREADS] [--cuda-memory-cap-gb G] "
                    + "[--model DIR|random:NAME] [--prompt P] [--force-answer A] [--max-new-tokens N] [--max-tiles N] "
                    + "[--dtype bf16|fp32] [--byte-tokenizer]");
            System.exit(2);
            return;
        }
        Torch.setThreads(Integer.getInteger("sa2va.threads", Math.max(1, Runtime.getRuntime().availableProcessors())));
        Path out = Path.of(a.get("out", "eval-out"));
        SampleSource source;
        if (a.integer("synthetic", 0) > 0) {
            int[] size = GenerateSynthetic.parseSize(a.get("size", "1024"));
            source = new SyntheticSource(SyntheticFundus.Config.defaults().withSize(size[0], size[1]),
                    (long) a.number("seed", 1), a.integer("synthetic", 0));
        } else if (a.positional.isEmpty()) {
            Path data = out.resolve("data");
            if (!Files.isDirectory(data.resolve("test"))) {
                System.err.println("no dataset given: writing 8 synthetic images (DRIVE layout) to " + data);
                DriveLayoutWriter.write(new SyntheticSource(SyntheticFundus.Config.defaults().withSize(565, 584), 1, 8),
                        data, "test", null);
            }
            source = VesselDatasets.drive(data, VesselDatasets.Options.defaults());
        } else {
            VesselDatasets.Options o = VesselDatasets.Options.defaults().withSplit(a.get("split", null))
                    .withAnnotator(a.integer("annotator", 1)).withText(a.get("text", null))
                    .withEstimateFov(a.flag("estimate-fov"));
            source = VesselDatasets.open(Path.of(a.positional.get(0)),
                    VesselDatasets.Layout.parse(a.get("layout", "auto")), o);
        }
        String dev = a.get("device", Devices.torchCudaAvailable() ? "cuda" : "cpu");
        Device device = dev.equals("cuda") ? Devices.cuda(0) : Devices.cpu();
        if (a.number("cuda-memory-cap-gb", 0) > 0) {
            long cap = (long) (a.number("cuda-memory-cap-gb", 0) * (1L << 30));
            double f = CudaMemory.capBytes(0, cap);
            System.err.printf(Locale.ROOT, "CUDA caching allocator capped at %.1f GiB (%.3f of the device)%n",
                    cap / (double) (1L << 30), f);
        }
        int prefetch = a.integer("prefetch", Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors() - 1)));
        if (prefetch > 0) {
            source = new Prefetching(source, prefetch, 2 * prefetch);
        }
        String name = a.get("segmenter", "frangi");
        if (!name.equals("frangi") && !name.equals("sa2va")) {
            throw new IllegalArgumentException("unknown segmenter '" + name + "'; available: frangi, sa2va "
                    + "(other models plug in through dev.sa2va.eval.Segmenter)");
        }
        Evaluator.Options eo = Evaluator.Options.defaults().withOutputDir(out)
                .withThreshold(a.number("threshold", 0.5)).withInsideFov(!a.flag("whole-image"))
                .withMaxOverlays(a.integer("overlays", -1))
                .withCalibration(a.flag("calibrate"), a.number("recall-weight", 0.5));
        System.err.println("evaluating " + source.name() + " (" + source.size() + " samples) -> " + out);
        try (Segmenter seg = name.equals("sa2va") ? sa2va(a, dev)
                : new FrangiVesselness(FrangiVesselness.Options.defaults().withDevice(device))) {
            EvaluationReport r = new Evaluator(eo).run(source, seg);
            System.out.printf(Locale.ROOT, "%.2f samples/s%s%n", r.results().size() / r.seconds(),
                    r.peakCudaBytes() >= 0 ? String.format(Locale.ROOT, ", peak CUDA memory allocated %.2f GiB",
                            r.peakCudaBytes() / (double) (1L << 30)) : "");
            if (device.is_cuda()) {
                System.out.printf(Locale.ROOT, "CUDA caching allocator: %.2f GiB reserved at the end, %d out-of-memory "
                        + "events, %d retries at a lower memory level%n", CudaMemory.reservedBytes(0) / (double) (1L << 30),
                        CudaMemory.outOfMemoryCount(0), r.outOfMemoryRetries());
            }
            if (seg instanceof Sa2vaSegmenter s) {
                System.out.println("sa2va: " + s.stats());
            }
            addRunInfo(out.resolve("summary.json"), seg, device.is_cuda(), a.number("cuda-memory-cap-gb", 0));
            System.out.println("files: " + out.resolve("per_sample.csv") + ", " + out.resolve("summary.json")
                    + (eo.maxOverlays() != 0 ? ", " + out.resolve("overlays") + "/" : ""));
            if (r.evaluated() == 0) {
                System.exit(1);
            }
        } finally {
            if (source instanceof Prefetching p) {
                p.close();
            }
        }
    }
}
