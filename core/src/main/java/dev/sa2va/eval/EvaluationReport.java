package dev.sa2va.eval;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import dev.sa2va.metrics.MaskMetrics;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.ToDoubleFunction;

/**
 * What an evaluation run produced: every sample's result and the summary over the scored ones. Means, standard
 * deviations and the pooled scores use the scored samples only; failed samples are counted and listed with their
 * reasons, never scored as 0.
 *
 * @param insideFov           true when scores were restricted to the field of view where a sample had one
 * @param outOfMemoryRetries  segmenter calls repeated after an out-of-memory failure
 * @param seconds             wall time of the whole run
 * @param calibration         threshold sweep over the scored samples, or null when not asked for
 * @param peakCudaBytes       the largest per-sample peak of bytes allocated by torch on CUDA device 0, or -1 (no
 *                            CUDA); the per-sample peaks are in the results
 */
public record EvaluationReport(String dataset, String segmenter, double threshold, boolean insideFov,
                               List<SampleResult> results, int outOfMemoryRetries, double seconds,
                               ThresholdCalibration.Result calibration, long peakCudaBytes) {
    /**
     * Statistics of one score over the scored samples.
     *
     * @param std sample standard deviation (n − 1 in the denominator); NaN when n < 2
     */
    public record Stat(int n, double mean, double std, double min, double max, double median) {
        static Stat of(double[] v) {
            int n = v.length;
            if (n == 0) {
                return new Stat(0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
            }
            double sum = 0;
            for (double x : v) {
                sum += x;
            }
            double mean = sum / n;
            double ss = 0;
            for (double x : v) {
                ss += (x - mean) * (x - mean);
            }
            double[] s = v.clone();
            Arrays.sort(s);
            double median = n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
            return new Stat(n, mean, n < 2 ? Double.NaN : Math.sqrt(ss / (n - 1)), s[0], s[n - 1], median);
        }
    }

    public int evaluated() {
        return (int) results.stream().filter(SampleResult::ok).count();
    }

    public int failed() {
        return results.size() - evaluated();
    }

    /** Samples scored at a memory level other than 0 (after out-of-memory fallbacks). */
    public int degraded() {
        return (int) results.stream().filter(r -> r.ok() && r.level() > 0).count();
    }

    public Stat stat(ToDoubleFunction<SampleResult> score) {
        return Stat.of(results.stream().filter(SampleResult::ok).mapToDouble(score).toArray());
    }

    public Stat dice() {
        return stat(SampleResult::dice);
    }

    public Stat recall() {
        return stat(SampleResult::recall);
    }

    public Stat precision() {
        return stat(SampleResult::precision);
    }

    public Stat iou() {
        return stat(SampleResult::iou);
    }

    /** Counts summed over the scored samples. */
    public MaskMetrics.Scores pooled() {
        long tp = 0, fp = 0, fn = 0, tn = 0;
        for (SampleResult r : results) {
            if (r.ok()) {
                tp += r.tp();
                fp += r.fp();
                fn += r.fn();
                tn += r.tn();
            }
        }
        return new MaskMetrics.Scores(tp, fp, fn, tn);
    }

    /** The summary as written to {@code summary.json}. */
    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        o.addProperty("dataset", dataset);
        o.addProperty("segmenter", segmenter);
        o.addProperty("threshold", threshold);
        o.addProperty("region", insideFov ? "field of view where provided, else whole image" : "whole image");
        o.addProperty("samples", results.size());
        o.addProperty("evaluated", evaluated());
        o.addProperty("failed", failed());
        JsonObject m = new JsonObject();
        m.add("dice", json(dice()));
        m.add("recall", json(recall()));
        m.add("precision", json(precision()));
        m.add("iou", json(iou()));
        m.add("specificity", json(stat(SampleResult::specificity)));
        m.add("accuracy", json(stat(SampleResult::accuracy)));
        o.add("metrics", m);
        MaskMetrics.Scores p = pooled();
        JsonObject po = new JsonObject();
        po.add("dice", num(p.dice()));
        po.add("recall", num(p.recall()));
        po.add("precision", num(p.precision()));
        po.add("iou", num(p.iou()));
        po.addProperty("tp", p.tp());
        po.addProperty("fp", p.fp());
        po.addProperty("fn", p.fn());
        po.addProperty("tn", p.tn());
        o.add("pooled", po);
        o.addProperty("out_of_memory_retries", outOfMemoryRetries);
        o.addProperty("degraded_samples", degraded());
        JsonArray f = new JsonArray();
        for (SampleResult r : results) {
            if (!r.ok()) {
                JsonObject e = new JsonObject();
                e.addProperty("index", r.index());
                e.addProperty("id", r.id());
                e.addProperty("stage", r.stage().name().toLowerCase(Locale.ROOT));
                e.addProperty("reason", r.reason());
                f.add(e);
            }
        }
        o.add("failures", f);
        o.add("seconds", num(seconds));
        o.add("samples_per_second", num(seconds > 0 ? results.size() / seconds : Double.NaN));
        if (peakCudaBytes >= 0) {
            o.addProperty("peak_cuda_allocated_bytes", peakCudaBytes);
        }
        if (calibration != null) {
            JsonObject c = new JsonObject();
            c.addProperty("note", "threshold sweep on the evaluated samples themselves (optimistic)");
            c.addProperty("samples", calibration.samples());
            c.add("best_dice", json(calibration.bestDice()));
            c.addProperty("recall_weight", calibration.recallWeight());
            c.add("best_dice_plus_weighted_recall", json(calibration.bestObjective()));
            JsonArray curve = new JsonArray();
            for (ThresholdCalibration.Point pt : calibration.curve()) {
                curve.add(json(pt));
            }
            c.add("curve", curve);
            o.add("calibration", c);
        }
        return o;
    }

    public String toJsonString() {
        return new GsonBuilder().setPrettyPrinting().serializeNulls().disableHtmlEscaping().create().toJson(toJson())
                + "\n";
    }

    /** A few lines for the console. */
    public String toText() {
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "%s | %s | threshold %.2f | %s%n", dataset, segmenter, threshold,
                insideFov ? "inside FOV" : "whole image"));
        b.append(String.format(Locale.ROOT, "samples %d, evaluated %d, failed %d, out-of-memory retries %d, %.1f s%n",
                results.size(), evaluated(), failed(), outOfMemoryRetries, seconds));
        b.append(line("Dice", dice())).append(line("Recall", recall())).append(line("Precision", precision()))
                .append(line("IoU", iou()));
        for (SampleResult r : results) {
            if (!r.ok()) {
                b.append("  failed ").append(r.id()).append(" [").append(r.stage().name().toLowerCase(Locale.ROOT))
                        .append("]: ").append(r.reason()).append('\n');
            }
        }
        if (calibration != null) {
            ThresholdCalibration.Point d = calibration.bestDice(), ob = calibration.bestObjective();
            b.append(String.format(Locale.ROOT, "calibration (on these samples): best Dice %.4f at threshold %.2f; "
                            + "best Dice+%.2f*Recall at %.2f (Dice %.4f, Recall %.4f)%n", d.meanDice(), d.threshold(),
                    calibration.recallWeight(), ob.threshold(), ob.meanDice(), ob.meanRecall()));
        }
        return b.toString();
    }

    private static String line(String name, Stat s) {
        return String.format(Locale.ROOT, "  %-9s %.4f ± %.4f  (min %.4f, median %.4f, max %.4f)%n", name, s.mean(),
                Double.isNaN(s.std()) ? 0.0 : s.std(), s.min(), s.median(), s.max());
    }

    private static JsonObject json(Stat s) {
        JsonObject o = new JsonObject();
        o.add("mean", num(s.mean()));
        o.add("std", num(s.std()));
        o.add("min", num(s.min()));
        o.add("median", num(s.median()));
        o.add("max", num(s.max()));
        o.addProperty("n", s.n());
        return o;
    }

    private static JsonObject json(ThresholdCalibration.Point p) {
        JsonObject o = new JsonObject();
        o.add("threshold", num(p.threshold()));
        o.add("dice", num(p.meanDice()));
        o.add("recall", num(p.meanRecall()));
        o.add("precision", num(p.meanPrecision()));
        o.add("iou", num(p.meanIou()));
        o.add("pooled_dice", num(p.pooledDice()));
        o.add("objective", num(p.objective()));
        return o;
    }

    /** JSON has no NaN: undefined values (e.g. the std of one sample) are null. */
    private static com.google.gson.JsonElement num(double v) {
        return Double.isFinite(v) ? new JsonPrimitive(v) : JsonNull.INSTANCE;
    }
}
