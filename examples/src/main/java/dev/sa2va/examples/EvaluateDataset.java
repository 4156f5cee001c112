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
 */
public final class EvaluateDataset {
    public static void main(String[] argv) throws Exception {
        Args a;
        try {
            a = new Args(argv, Set.of("estimate-fov", "whole-image", "calibrate"), Set.of("layout", "split",
                    "annotator", "text", "threshold", "out", "overlays", "recall-weight", "device", "segmenter",
                    "synthetic", "size", "seed", "prefetch", "cuda-memory-cap-gb"));
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.err.println("usage: EvaluateDataset [DATASET] [--layout L] [--split S] [--annotator 1|2] "
                    + "[--text T] [--estimate-fov] [--whole-image] [--threshold T] [--out DIR] [--overlays N] "
                    + "[--calibrate] [--recall-weight W] [--device cpu|cuda] [--segmenter frangi] "
                    + "[--synthetic N --size WxH --seed S] [--prefetch THREADS] [--cuda-memory-cap-gb G]");
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
        if (!name.equals("frangi")) {
            throw new IllegalArgumentException("unknown segmenter '" + name + "'; available: frangi "
                    + "(other models plug in through dev.sa2va.eval.Segmenter)");
        }
        Evaluator.Options eo = Evaluator.Options.defaults().withOutputDir(out)
                .withThreshold(a.number("threshold", 0.5)).withInsideFov(!a.flag("whole-image"))
                .withMaxOverlays(a.integer("overlays", -1))
                .withCalibration(a.flag("calibrate"), a.number("recall-weight", 0.5));
        System.err.println("evaluating " + source.name() + " (" + source.size() + " samples) -> " + out);
        try (Segmenter seg = new FrangiVesselness(FrangiVesselness.Options.defaults().withDevice(device))) {
            EvaluationReport r = new Evaluator(eo).run(source, seg);
            System.out.printf(Locale.ROOT, "%.2f samples/s%s%n", r.results().size() / r.seconds(),
                    r.peakCudaBytes() >= 0 ? String.format(Locale.ROOT, ", peak CUDA memory allocated %.2f GiB",
                            r.peakCudaBytes() / (double) (1L << 30)) : "");
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
