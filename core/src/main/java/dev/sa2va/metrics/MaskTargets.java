package dev.sa2va.metrics;

import dev.sa2va.core.KernelCall;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.kernels.MaskKind;
import java.util.Arrays;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Ground truth for the mask kernels: binary targets, an optional region of interest (e.g. a fundus field of view;
 * pixels outside are ignored by every count and sum) and the group size G (G consecutive predictions share one
 * target row, e.g. G sampled masks of one image). Immutable; {@link #roi} and {@link #group} return copies.
 *
 * <p>Dense targets are uint8 (or bool) with values 0/1: any other value is reported per sample (scores become NaN,
 * see {@link MaskMetrics.Result#requireValid()}). Bit-packed targets ({@link BitMasks}) are 0/1 by construction and
 * read 8x fewer bytes.
 */
public final class MaskTargets {
    final Tensor dense;      // uint8/bool [N/G, ...] or null
    final BitMasks packed;   // or this
    final Tensor roiDense;   // uint8/bool, non-zero = inside, or null
    final BitMasks roiPacked;
    final int group;

    private MaskTargets(Tensor dense, BitMasks packed, Tensor roiDense, BitMasks roiPacked, int group) {
        this.dense = dense;
        this.packed = packed;
        this.roiDense = roiDense;
        this.roiPacked = roiPacked;
        this.group = group;
    }

    /** uint8 / bool targets {@code [N/G, ...]}, 0 = background, 1 = foreground. */
    public static MaskTargets of(Tensor targets) {
        TensorCheck.of("targets", targets).dtype(ScalarType.Byte, ScalarType.Bool).minDims(1).nonEmpty().contiguous();
        return new MaskTargets(targets, null, null, null, 1);
    }

    public static MaskTargets of(BitMasks targets) {
        if (targets == null) {
            throw new IllegalArgumentException("targets: null");
        }
        return new MaskTargets(null, targets, null, null, 1);
    }

    /** Region of interest {@code [N/G, ...]} (uint8 / bool, non-zero = inside). */
    public MaskTargets roi(Tensor roi) {
        if (roi == null) {
            return new MaskTargets(dense, packed, null, null, group);
        }
        TensorCheck.of("roi", roi).dtype(ScalarType.Byte, ScalarType.Bool).minDims(1).nonEmpty().contiguous();
        return new MaskTargets(dense, packed, roi, null, group);
    }

    public MaskTargets roi(BitMasks roi) {
        return new MaskTargets(dense, packed, null, roi, group);
    }

    /** G predictions per target row (G >= 1). */
    public MaskTargets group(int g) {
        if (g < 1) {
            throw new IllegalArgumentException("group: size must be >= 1, got " + g);
        }
        return new MaskTargets(dense, packed, roiDense, roiPacked, g);
    }

    public int groupSize() {
        return group;
    }

    /**
     * Checks shapes and devices against predictions of shape {@code predShape} ({@code [N, ...]}, P = product of the
     * rest) on device {@code dev} (-1 = cpu) and returns the native view. Dense targets and ROI must have the
     * predictions' per-sample shape; bit-packed ones the same pixel count. For the kernel wrappers
     * ({@link MaskMetrics}, {@code MaskPolicy}, {@code MaskLosses}).
     */
    public Bound bind(long[] predShape, int dev, String predName) {
        long n = predShape[0], p = 1;
        for (int i = 1; i < predShape.length; i++) {
            p *= predShape[i];
        }
        if (n % group != 0) {
            throw new IllegalArgumentException("group: size " + group + " does not divide the " + n + " samples of "
                    + predName);
        }
        Pointer t;
        int tkind;
        if (dense != null) {
            check("targets", dense, predShape, predName);
            KernelCall.requireDevice("targets", dense, predName, dev);
            t = dense.data_ptr();
            tkind = MaskKind.U8;
        } else {
            checkPacked("targets", packed, n, p, predName);
            KernelCall.requireDevice("targets", packed.bits(), predName, dev);
            t = packed.bits().data_ptr();
            tkind = MaskKind.PACKED;
        }
        Pointer r = null;
        int rkind = MaskKind.NONE;
        if (roiDense != null) {
            check("roi", roiDense, predShape, predName);
            KernelCall.requireDevice("roi", roiDense, predName, dev);
            r = roiDense.data_ptr();
            rkind = MaskKind.U8_NONZERO;
        } else if (roiPacked != null) {
            checkPacked("roi", roiPacked, n, p, predName);
            KernelCall.requireDevice("roi", roiPacked.bits(), predName, dev);
            r = roiPacked.bits().data_ptr();
            rkind = MaskKind.PACKED;
        }
        return new Bound(t, tkind, r, rkind, group);
    }

    private void check(String name, Tensor x, long[] predShape, String predName) {
        long[] shape = TensorCheck.shapeOf(x);
        long[] want = predShape.clone();
        want[0] = predShape[0] / group;
        if (!Arrays.equals(shape, want)) {
            throw new IllegalArgumentException(name + ": shape " + Arrays.toString(shape) + " does not match "
                    + predName + " " + Arrays.toString(predShape) + ": expected " + Arrays.toString(want) + " ("
                    + predShape[0] + " samples, group " + group + ")");
        }
    }

    private void checkPacked(String name, BitMasks m, long n, long p, String predName) {
        long rows = n / group;
        if (m.count() != rows || m.pixels() != p) {
            throw new IllegalArgumentException(name + ": " + m + " does not match " + predName + ": expected " + rows
                    + " row(s) of " + p + " pixels (" + n + " samples, group " + group + ")");
        }
    }

    /** What the kernels get: pointers and kinds ({@link MaskKind}). */
    public record Bound(Pointer target, int targetKind, Pointer roi, int roiKind, long group) {
    }
}
