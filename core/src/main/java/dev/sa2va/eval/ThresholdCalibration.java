package dev.sa2va.eval;

import dev.sa2va.core.Torch;
import dev.sa2va.metrics.MaskMetrics;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/**
 * Picks the probability threshold of a segmenter from its score maps and the ground truth: sweeps a grid of
 * thresholds, computes every sample's confusion counts at each with the fused mask kernel, and reports the
 * threshold with the best mean per-sample Dice and the best mean {@code Dice + w·Recall} (the RL reward's shape,
 * which trades precision for thin-vessel recall).
 *
 * <p>Streaming: {@link #add} keeps only the counts ({@code thresholds × 4} longs per sample), never the maps.
 * Ties go to the threshold closest to 0.5 (Sa2VA's default), so a flat optimum does not drift to the grid's edge.
 * Calibrating and reporting on the same samples is optimistic; calibrate on a separate split when it matters.
 */
public final class ThresholdCalibration {
    private final double[] thresholds;
    private final List<long[][]> counts = new ArrayList<>();

    /** The default grid 0.01, 0.02, ..., 0.99. */
    public ThresholdCalibration() {
        this(defaultThresholds());
    }

    /** @param thresholds probabilities, strictly increasing, inside (0, 1) */
    public ThresholdCalibration(double... thresholds) {
        if (thresholds == null || thresholds.length == 0) {
            throw new IllegalArgumentException("thresholds: need at least one");
        }
        for (int i = 0; i < thresholds.length; i++) {
            double t = thresholds[i];
            if (!(t > 0 && t < 1)) {
                throw new IllegalArgumentException("thresholds[" + i + "] = " + t + " is not inside (0, 1)");
            }
            if (i > 0 && !(t > thresholds[i - 1])) {
                throw new IllegalArgumentException("thresholds must be strictly increasing: [" + (i - 1) + "] = "
                        + thresholds[i - 1] + ", [" + i + "] = " + t);
            }
        }
        this.thresholds = thresholds.clone();
    }

    public static double[] defaultThresholds() {
        double[] t = new double[99];
        for (int i = 0; i < t.length; i++) {
            t[i] = (i + 1) / 100.0;
        }
        return t;
    }

    public double[] thresholds() {
        return thresholds.clone();
    }

    public int samples() {
        return counts.size();
    }

    /**
     * Adds one sample.
     *
     * @param prediction {@code [H, W]} map (probabilities or logits)
     * @param target     uint8 {@code [H, W]}, non-zero = foreground
     * @param fov        uint8 {@code [H, W]} region to count in, or null for the whole image
     */
    public void add(Segmenter.Prediction prediction, Tensor target, Tensor fov) {
        add(RegionOfInterest.prepare(prediction.map(), target, fov), prediction.kind());
    }

    void add(RegionOfInterest.Prepared p, Segmenter.MapKind kind) {
        TensorVector per = new TensorVector();
        for (double t : thresholds) {
            per.push_back(p.rawCounts(kind == Segmenter.MapKind.LOGIT ? MaskMetrics.logitOf(t) : t));
        }
        long[] flat = Torch.toLongs(torch.cat(per)); // one host sync for the whole sweep
        long[][] c = new long[thresholds.length][4];
        for (int i = 0; i < thresholds.length; i++) {
            System.arraycopy(flat, 4 * i, c[i], 0, 4);
            c[i][3] -= p.outside();
        }
        counts.add(c);
    }

    /**
     * One threshold's scores over all samples added.
     *
     * @param meanDice   mean over samples of the per-sample Dice
     * @param pooledDice Dice of the counts summed over samples (dominated by large images / masks)
     * @param objective  mean over samples of Dice + w·Recall
     */
    public record Point(double threshold, double meanDice, double meanRecall, double meanPrecision, double meanIou,
                        double pooledDice, double objective) {
    }

    /**
     * @param curve         every threshold, in grid order
     * @param bestDice      the threshold with the highest mean Dice
     * @param bestObjective the threshold with the highest mean Dice + w·Recall
     */
    public record Result(List<Point> curve, Point bestDice, Point bestObjective, double recallWeight, int samples) {
        /** The curve point of the grid threshold nearest to {@code t}. */
        public Point at(double t) {
            Point best = curve.get(0);
            for (Point p : curve) {
                if (Math.abs(p.threshold() - t) < Math.abs(best.threshold() - t)) {
                    best = p;
                }
            }
            return best;
        }
    }

    /** @param recallWeight w in Dice + w·Recall, >= 0 */
    public Result result(double recallWeight) {
        if (!(recallWeight >= 0) || Double.isInfinite(recallWeight)) {
            throw new IllegalArgumentException("recallWeight must be finite and >= 0, got " + recallWeight);
        }
        if (counts.isEmpty()) {
            throw new IllegalStateException("no samples added");
        }
        List<Point> curve = new ArrayList<>();
        int n = counts.size();
        for (int i = 0; i < thresholds.length; i++) {
            double dice = 0, recall = 0, precision = 0, iou = 0;
            long tp = 0, fp = 0, fn = 0, tn = 0;
            for (long[][] c : counts) {
                MaskMetrics.Scores s = new MaskMetrics.Scores(c[i][0], c[i][1], c[i][2], c[i][3]);
                dice += s.dice();
                recall += s.recall();
                precision += s.precision();
                iou += s.iou();
                tp += c[i][0];
                fp += c[i][1];
                fn += c[i][2];
                tn += c[i][3];
            }
            double pooled = new MaskMetrics.Scores(tp, fp, fn, tn).dice();
            curve.add(new Point(thresholds[i], dice / n, recall / n, precision / n, iou / n, pooled,
                    (dice + recallWeight * recall) / n));
        }
        Point bestDice = curve.get(0), bestObj = curve.get(0);
        for (Point p : curve) {
            if (better(p.meanDice(), p.threshold(), bestDice.meanDice(), bestDice.threshold())) {
                bestDice = p;
            }
            if (better(p.objective(), p.threshold(), bestObj.objective(), bestObj.threshold())) {
                bestObj = p;
            }
        }
        return new Result(List.copyOf(curve), bestDice, bestObj, recallWeight, n);
    }

    private static boolean better(double v, double t, double bestV, double bestT) {
        return v > bestV || (v == bestV && Math.abs(t - 0.5) < Math.abs(bestT - 0.5));
    }

    /**
     * Calibrates on in-memory maps.
     *
     * @param predictions one {@code [H, W]} map per sample
     * @param targets     uint8 {@code [H, W]} per sample
     * @param fovs        null, or one region (or null) per sample
     */
    public static Result calibrate(List<Segmenter.Prediction> predictions, List<Tensor> targets, List<Tensor> fovs,
                                   double recallWeight) {
        if (predictions.size() != targets.size() || (fovs != null && fovs.size() != targets.size())) {
            throw new IllegalArgumentException("predictions (" + predictions.size() + "), targets (" + targets.size()
                    + ")" + (fovs == null ? "" : " and fovs (" + fovs.size() + ")") + " must have the same length");
        }
        ThresholdCalibration c = new ThresholdCalibration();
        for (int i = 0; i < predictions.size(); i++) {
            c.add(predictions.get(i), targets.get(i), fovs == null ? null : fovs.get(i));
        }
        return c.result(recallWeight);
    }
}
