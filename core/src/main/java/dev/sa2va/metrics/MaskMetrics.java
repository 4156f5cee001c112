package dev.sa2va.metrics;

import dev.sa2va.core.CudaStreams;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.kernels.MaskStatsKernels;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Segmentation metrics of predicted masks against ground truth, computed by the fused native kernel
 * (one pass over the pixels, CUDA or C++ CPU by the tensors' device).
 *
 * <p>Shapes: {@code logits} is {@code [N, ...]} (e.g. {@code [N, H, W]}), one sample per leading index;
 * {@code targets} has the same shape, uint8, where any non-zero value is foreground.
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
        TensorCheck z = TensorCheck.of("logits", logits).cpuOrCuda().dtype(TensorCheck.FLOAT_TYPES).minDims(1)
                .nonEmpty().contiguous();
        TensorCheck y = TensorCheck.of("targets", targets).dtype(ScalarType.Byte).sameShape("logits", logits)
                .sameDevice("logits", logits).contiguous();
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
        Tensor out = torch.empty(new long[] {n, 4}, new TensorOptions(ScalarType.Long).device(
                new DeviceOptional(logits.device())), new MemoryFormatOptional());
        if (logits.is_cuda()) {
            Pointer stream = CudaStreams.prepareLaunch(logits.device(), "mask_stats_cuda");
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
}
