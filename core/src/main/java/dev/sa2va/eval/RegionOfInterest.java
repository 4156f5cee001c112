package dev.sa2va.eval;

import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.metrics.MaskMetrics;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Confusion counts restricted to a region of interest (the field of view), with the fused mask kernel.
 * {@link MaskMetrics} counts every pixel, so outside the region the map is set to −∞ (never foreground) and the
 * target to 0, which turns those pixels into true negatives, and their number is subtracted from TN afterwards.
 * This is the one place to switch over once MaskMetrics takes a region itself.
 */
final class RegionOfInterest {
    private RegionOfInterest() {
    }

    /**
     * A map and target ready for repeated thresholding.
     *
     * @param scores  {@code [1, H·W]} float32/16/bf16, contiguous, on the map's device
     * @param targets {@code [1, H·W]} uint8 on the same device
     * @param outside pixels outside the region (to subtract from TN)
     */
    record Prepared(Tensor scores, Tensor targets, long outside) {
        /** {@code [1, 4]} int64 {TP, FP, FN, TN} (TN still including the outside pixels; asynchronous on CUDA). */
        Tensor rawCounts(double cutoff) {
            return MaskMetrics.confusion(scores, targets, cutoff);
        }

        /** {TP, FP, FN, TN} inside the region. */
        long[] counts(double cutoff) {
            long[] c = Torch.toLongs(rawCounts(cutoff));
            c[3] -= outside;
            return c;
        }
    }

    /**
     * @param map    {@code [H, W]} float map (any float dtype), any device
     * @param target {@code [H, W]} uint8, non-zero = foreground (CPU or the map's device)
     * @param fov    {@code [H, W]} uint8, non-zero = inside; null = the whole image
     */
    static Prepared prepare(Tensor map, Tensor target, Tensor fov) {
        TensorCheck.of("map", map).dims(2);
        TensorCheck.of("target", target).dtype(ScalarType.Byte).sameShape("map", map);
        Tensor z = map;
        if (Torch.dtype(z) == ScalarType.Double) {
            z = z.to(ScalarType.Float);
        }
        Tensor y = target.to(map.device(), ScalarType.Byte);
        long outside = 0;
        if (fov != null) {
            TensorCheck.of("fov", fov).dtype(ScalarType.Byte).sameShape("map", map);
            Tensor in = fov.to(map.device(), ScalarType.Byte).ne(Torch.scalar(0L));
            outside = map.numel() - Torch.toLongs(in.count_nonzero())[0];
            z = z.masked_fill(in.logical_not(), new Scalar(Double.NEGATIVE_INFINITY));
            y = y.mul(in.to(ScalarType.Byte));
        }
        long p = map.numel();
        return new Prepared(z.contiguous().reshape(1, p), y.contiguous().reshape(1, p), outside);
    }
}
