package dev.sa2va.metrics;

import dev.sa2va.core.KernelCall;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.kernels.MaskKind;
import dev.sa2va.kernels.MaskStatsKernels;
import java.util.Arrays;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Segmentation metrics of predicted masks against ground truth, computed by the fused native kernel
 * (one pass over the pixels, CUDA or C++ CPU by the tensors' device).
 *
 * <p>Shapes: {@code logits} is {@code [N, ...]} (e.g. {@code [N, H, W]}), one sample per leading index;
 * {@code targets} has the same shape, uint8, where any non-zero value is foreground.
 *
 * <p>{@link #evaluate} is the general form: logits, probabilities or binary (also bit-packed) predictions against
 * uint8 or bit-packed targets, with a region of interest and G predictions per target ({@link MaskTargets}); per
 * sample it returns exact TP/FP/FN/TN, the soft sums, Dice, Recall, Precision, IoU, Tversky and a configurable reward
 * ({@link Spec}), as device tensors without synchronising the host. One kernel launch.
 */
public final class MaskMetrics {
    private MaskMetrics() {
    }

    /** Logit threshold equivalent to a probability threshold: {@code sigmoid(z) > p  <=>  z > log(p/(1-p))}. */
    public static double logitOf(double probability) {
        if (!(probability > 0 && probability < 1)) {
            throw new IllegalArgumentException("probability threshold must be in (0, 1), got " + probability);
        }
        return Math.log(probability / (1 - probability));
    }

    /** {@link #confusion(Tensor, Tensor, double)} at logit 0, i.e. probability 0.5 (Sa2VA's threshold). */
    public static Tensor confusion(Tensor logits, Tensor targets) {
        return confusion(logits, targets, 0.0);
    }

    /**
     * Per-sample confusion counts of {@code logits > logitThreshold} against {@code targets != 0}.
     *
     * @return int64 tensor {@code [N, 4]} = {TP, FP, FN, TN} on the inputs' device (asynchronous on CUDA)
     */
    public static Tensor confusion(Tensor logits, Tensor targets, double logitThreshold) {
        TensorCheck z = TensorCheck.of("logits", logits).dtype(TensorCheck.FLOAT_TYPES).minDims(1).nonEmpty().contiguous();
        int dev = KernelCall.device("logits", logits);
        TensorCheck y = TensorCheck.of("targets", targets).dtype(ScalarType.Byte).sameShape("logits", logits);
        KernelCall.requireDevice("targets", targets, "logits", dev);
        y.contiguous();
        if (Double.isNaN(logitThreshold)) {
            throw new IllegalArgumentException("logitThreshold is NaN");
        }
        long n = logits.size(0);
        long p = logits.numel() / n;
        if (p == 0) {
            throw new IllegalArgumentException("logits: no pixels per sample (shape " + TensorCheck.shapeString(logits) + ")");
        }
        int dtype = TensorCheck.nativeDType(Torch.dtype(logits));
        float thr = (float) logitThreshold;
        Tensor out = KernelCall.empty(ScalarType.Long, dev, n, 4);
        if (dev >= 0) {
            Pointer stream = KernelCall.stream(dev, "mask_stats_cuda");
            MaskStatsKernels.mask_stats_cuda(z.pointer(), dtype, y.pointer(), n, p, thr, out.data_ptr(), stream);
        } else {
            MaskStatsKernels.mask_stats_cpu(z.pointer(), dtype, y.pointer(), n, p, thr, out.data_ptr());
        }
        return out;
    }

    /** Confusion counts of one sample with the scores derived from them. */
    public record Scores(long tp, long fp, long fn, long tn) {
        /** 2TP / (2TP + FP + FN); 1 when both masks are empty. */
        public double dice() {
            long d = 2 * tp + fp + fn;
            return d == 0 ? 1.0 : 2.0 * tp / d;
        }

        /** TP / (TP + FN) (sensitivity); 1 when the target is empty. */
        public double recall() {
            long d = tp + fn;
            return d == 0 ? 1.0 : (double) tp / d;
        }

        /** TP / (TP + FP); 1 when nothing is predicted. */
        public double precision() {
            long d = tp + fp;
            return d == 0 ? 1.0 : (double) tp / d;
        }

        /** TP / (TP + FP + FN); 1 when both masks are empty. */
        public double iou() {
            long d = tp + fp + fn;
            return d == 0 ? 1.0 : (double) tp / d;
        }
    }

    /** Copies a {@code [N, 4]} confusion tensor to the host (synchronises on CUDA). */
    public static Scores[] scores(Tensor confusion) {
        TensorCheck.of("confusion", confusion).dtype(ScalarType.Long).shape(-1, 4);
        Tensor c = confusion.cpu().contiguous();
        int n = (int) c.size(0);
        long[] v = new long[n * 4];
        new LongPointer(c.data_ptr()).capacity(v.length).get(v);
        Scores[] s = new Scores[n];
        for (int i = 0; i < n; i++) {
            s[i] = new Scores(v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]);
        }
        return s;
    }

    // ---- general evaluation -----------------------------------------------------------------------------------

    /** How predictions are given. */
    public enum Input {
        /** float logits z: hard = z > threshold (a logit), soft = sigmoid(z). */
        LOGITS,
        /** float probabilities in [0, 1]: hard = p > threshold, soft = p; values outside [0, 1] are invalid. */
        PROBABILITIES,
        /** uint8 / bool 0/1 (other values are invalid): hard = soft = the value. */
        BINARY
    }

    /** What an empty denominator (e.g. Dice when prediction and target are both empty) scores. */
    public enum EmptyMode {
        /**
         * 1: both empty is perfect agreement, an empty target leaves nothing to recall, an empty prediction
         * claims nothing wrong (segmentation_models_pytorch's zero_division=1).
         */
        ONE,
        /** NaN, for parity with MONAI (ignore_empty) and torchmetrics (zero_division="nan"). */
        NAN
    }

    /**
     * Evaluation settings: input kind and threshold, reward = wDice Dice + wRecall Recall + wPrecision Precision +
     * wIoU IoU + wTversky Tversky(alpha, beta), empty-mask semantics, and hard (counts) or soft (sums of
     * probabilities) scores. Immutable; the {@code with...} methods return modified copies.
     */
    public static final class Spec {
        /** Logits at threshold 0 (probability 0.5), reward = Dice, Tversky alpha = beta = 0.5, empty scores 1, hard. */
        public static final Spec DEFAULT = new Spec(Input.LOGITS, 0.0, new double[] {1, 0, 0, 0, 0}, 0.5, 0.5,
                EmptyMode.ONE, false);

        private final Input input;
        private final double threshold;
        private final double[] weights;
        private final double alpha;
        private final double beta;
        private final EmptyMode empty;
        private final boolean soft;
        private final float[] array;

        private Spec(Input input, double threshold, double[] weights, double alpha, double beta, EmptyMode empty,
                     boolean soft) {
            if (input == null || empty == null) {
                throw new IllegalArgumentException("spec: input and empty mode must not be null");
            }
            finite("threshold", threshold);
            if (input == Input.PROBABILITIES && (threshold < 0 || threshold > 1)) {
                throw new IllegalArgumentException("threshold: a probability threshold must be in [0, 1], got " + threshold);
            }
            String[] names = {"wDice", "wRecall", "wPrecision", "wIoU", "wTversky"};
            for (int i = 0; i < 5; i++) {
                finite(names[i], weights[i]);
            }
            nonNegative("alpha", alpha);
            nonNegative("beta", beta);
            this.input = input;
            this.threshold = threshold;
            this.weights = weights.clone();
            this.alpha = alpha;
            this.beta = beta;
            this.empty = empty;
            this.soft = soft;
            float[] a = new float[MaskKind.SPEC_LEN];
            for (int i = 0; i < 5; i++) {
                a[MaskKind.SPEC_W_DICE + i] = (float) weights[i];
            }
            a[MaskKind.SPEC_ALPHA] = (float) alpha;
            a[MaskKind.SPEC_BETA] = (float) beta;
            a[MaskKind.SPEC_EMPTY_NAN] = empty == EmptyMode.NAN ? 1f : 0f;
            a[MaskKind.SPEC_SOFT] = soft ? 1f : 0f;
            this.array = a;
        }

        public Spec withInput(Input kind, double threshold) {
            return new Spec(kind, threshold, weights, alpha, beta, empty, soft);
        }

        /** reward = wDice Dice + wRecall Recall + wPrecision Precision + wIoU IoU + wTversky Tversky. */
        public Spec withReward(double wDice, double wRecall, double wPrecision, double wIoU, double wTversky) {
            return new Spec(input, threshold, new double[] {wDice, wRecall, wPrecision, wIoU, wTversky}, alpha, beta,
                    empty, soft);
        }

        /** Tversky index TP / (TP + alpha FP + beta FN); beta > alpha favours recall (thin vessels). */
        public Spec withTversky(double alpha, double beta) {
            return new Spec(input, threshold, weights, alpha, beta, empty, soft);
        }

        public Spec withEmpty(EmptyMode mode) {
            return new Spec(input, threshold, weights, alpha, beta, mode, soft);
        }

        /** Scores from the soft sums (sum p*y, sum p, sum y) instead of the counts of the thresholded mask. */
        public Spec withSoft(boolean soft) {
            return new Spec(input, threshold, weights, alpha, beta, empty, soft);
        }

        public Input input() {
            return input;
        }

        public double threshold() {
            return threshold;
        }

        /** The native spec array (mask_pass.h); shared, do not modify. */
        public float[] nativeArray() {
            return array;
        }

        private static void finite(String name, double v) {
            if (!Double.isFinite(v)) {
                throw new IllegalArgumentException(name + ": must be finite, got " + v);
            }
        }

        private static void nonNegative(String name, double v) {
            if (!(v >= 0) || !Double.isFinite(v)) {
                throw new IllegalArgumentException(name + ": must be finite and >= 0, got " + v);
            }
        }
    }

    /** Rows of {@link Result#stats()}. */
    public static final int TP = 0, FP = 1, FN = 2, TN = 3, SUM_PY = 4, SUM_P = 5, SUM_Y = 6, SUM_BCE = 7,
            INVALID_TARGET = 8, INVALID_PRED = 9;
    /** Rows of {@link Result#scores()}. */
    public static final int REWARD = 0, DICE = 1, RECALL = 2, PRECISION = 3, IOU = 4, TVERSKY = 5;

    /**
     * Per-sample results, metric-major so that one metric of all samples (e.g. the rewards) is a contiguous row.
     *
     * @param stats  float64 {@code [10, N]}: TP, FP, FN, TN (exact), sum p*y, sum p, sum y, sum BCE (loss passes
     *               only), invalid target/ROI values, invalid prediction values
     * @param scores float32 {@code [6, N]}: reward, Dice, Recall, Precision, IoU, Tversky; NaN for a sample with
     *               invalid values
     */
    public record Result(Tensor stats, Tensor scores) {
        /** Row {@link #REWARD} of the scores: float32 {@code [N]}, contiguous, on the device. */
        public Tensor reward() {
            return scores.select(0, REWARD);
        }

        public Tensor score(int row) {
            return scores.select(0, row);
        }

        /** Copies everything to the host (synchronises on CUDA). */
        public Sample[] toHost() {
            double[] st = Torch.toDoubles(stats);
            float[] sc = Torch.toFloats(scores);
            int n = (int) stats.size(1);
            Sample[] out = new Sample[n];
            for (int i = 0; i < n; i++) {
                double[] a = new double[MaskKind.STATS_ROWS];
                for (int k = 0; k < a.length; k++) {
                    a[k] = st[k * n + i];
                }
                out[i] = new Sample((long) a[TP], (long) a[FP], (long) a[FN], (long) a[TN], a[SUM_PY], a[SUM_P],
                        a[SUM_Y], (long) a[INVALID_TARGET], (long) a[INVALID_PRED], sc[REWARD * n + i],
                        sc[DICE * n + i], sc[RECALL * n + i], sc[PRECISION * n + i], sc[IOU * n + i], sc[TVERSKY * n + i]);
            }
            return out;
        }

        /**
         * Throws when any sample had invalid inputs (synchronises on CUDA; call it where a sync is acceptable, e.g.
         * when logging). Returns this.
         *
         * @throws IllegalArgumentException naming the first bad sample and what was wrong with it
         */
        public Result requireValid() {
            double[] st = Torch.toDoubles(stats.narrow(0, INVALID_TARGET, 2));
            int n = (int) stats.size(1);
            for (int i = 0; i < n; i++) {
                if (st[i] != 0) {
                    throw new IllegalArgumentException("targets: sample " + i + " has " + (long) st[i]
                            + " target/roi value(s) other than 0 and 1");
                }
                if (st[n + i] != 0) {
                    throw new IllegalArgumentException("predictions: sample " + i + " has " + (long) st[n + i]
                            + " invalid value(s) (NaN logits, probabilities outside [0, 1], or binary values other "
                            + "than 0 and 1)");
                }
            }
            return this;
        }
    }

    /** One sample of a {@link Result} on the host. */
    public record Sample(long tp, long fp, long fn, long tn, double sumPY, double sumP, double sumY, long invalidTarget,
                         long invalidPred, float reward, float dice, float recall, float precision, float iou,
                         float tversky) {
    }

    /**
     * Statistics and scores of {@code pred} ({@code [N, ...]}, read as {@code spec.input()}) against {@code targets}.
     * Asynchronous on CUDA: the result tensors are on the predictions' device.
     */
    public static Result evaluate(Tensor pred, MaskTargets targets, Spec spec) {
        return evaluate(pred, targets, spec, null);
    }

    /**
     * {@link #evaluate(Tensor, MaskTargets, Spec)} writing into {@code reuse}'s tensors when they fit (same N and
     * device), e.g. the previous call's result in a training loop: skips two allocations per call.
     */
    public static Result evaluate(Tensor pred, MaskTargets targets, Spec spec, Result reuse) {
        boolean binary = spec.input() == Input.BINARY;
        TensorCheck z = TensorCheck.of("predictions", pred);
        if (binary) {
            z.dtype(ScalarType.Byte, ScalarType.Bool);
        } else {
            z.dtype(TensorCheck.FLOAT_TYPES);
        }
        z.minDims(1).nonEmpty().contiguous();
        long n = pred.size(0), p = pred.numel() / n;
        checkPixels("predictions", pred, p);
        int kind = binary ? MaskKind.U8 : spec.input() == Input.LOGITS ? MaskKind.LOGITS : MaskKind.PROBS;
        int dtype = binary ? dev.sa2va.kernels.DType.U8 : TensorCheck.nativeDType(Torch.dtype(pred));
        return run(pred.data_ptr(), dtype, kind, KernelCall.device("predictions", pred), TensorCheck.shapeOf(pred), n, p,
                targets, spec, reuse);
    }

    /** {@link #evaluate(Tensor, MaskTargets, Spec)} of bit-packed binary predictions (spec's input is ignored). */
    public static Result evaluate(BitMasks pred, MaskTargets targets, Spec spec) {
        return evaluate(pred, targets, spec, null);
    }

    /** {@link #evaluate(BitMasks, MaskTargets, Spec)} into {@code reuse}'s tensors when they fit. */
    public static Result evaluate(BitMasks pred, MaskTargets targets, Spec spec, Result reuse) {
        long[] shape = new long[pred.sampleShape().length + 1];
        shape[0] = pred.count();
        System.arraycopy(pred.sampleShape(), 0, shape, 1, shape.length - 1);
        return run(pred.bits().data_ptr(), dev.sa2va.kernels.DType.U8, MaskKind.PACKED,
                KernelCall.device("predictions", pred.bits()), shape, pred.count(), pred.pixels(), targets, spec, reuse);
    }

    private static Result run(Pointer pred, int dtype, int kind, int dev, long[] predShape, long n, long p,
                              MaskTargets targets, Spec spec, Result reuse) {
        if (targets == null || spec == null) {
            throw new IllegalArgumentException("targets and spec must not be null");
        }
        MaskTargets.Bound b = targets.bind(predShape, dev, "predictions");
        Tensor stats = KernelCall.reuse(reuse == null ? null : reuse.stats(), ScalarType.Double, dev,
                MaskKind.STATS_ROWS, n);
        Tensor scores = KernelCall.reuse(reuse == null ? null : reuse.scores(), ScalarType.Float, dev,
                MaskKind.SCORE_ROWS, n);
        float thr = (float) spec.threshold();
        if (dev >= 0) {
            Pointer stream = KernelCall.stream(dev, "mask_scores_cuda");
            MaskStatsKernels.mask_scores_cuda(pred, dtype, kind, b.target(), b.targetKind(), b.roi(), b.roiKind(), n, p,
                    b.group(), thr, spec.nativeArray(), stats.data_ptr(), scores.data_ptr(), null, null, null, stream);
        } else {
            MaskStatsKernels.mask_scores_cpu(pred, dtype, kind, b.target(), b.targetKind(), b.roi(), b.roiKind(), n, p,
                    b.group(), thr, spec.nativeArray(), stats.data_ptr(), scores.data_ptr(), null, null, null);
        }
        return reuse != null && reuse.stats() == stats && reuse.scores() == scores ? reuse : new Result(stats, scores);
    }

    /** Per-sample pixel counts are 32-bit in the kernels. */
    static void checkPixels(String name, Tensor t, long p) {
        if (p >= (1L << 31)) {
            throw new IllegalArgumentException(name + ": " + p + " pixels per sample (shape "
                    + Arrays.toString(TensorCheck.shapeOf(t)) + "); at most 2^31 - 1 supported");
        }
    }
}
