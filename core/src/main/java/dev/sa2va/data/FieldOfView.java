package dev.sa2va.data;

import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A field-of-view mask for datasets that ship none (CHASE_DB1, STARE, FIVES): fundus cameras leave the region
 * outside the circular aperture near black, and the red channel is bright everywhere inside it (vessels and the
 * fovea darken green far more than red), so a threshold on red separates the two.
 */
public final class FieldOfView {
    private FieldOfView() {
    }

    /**
     * uint8 {@code [H, W]}: 1 where the red channel exceeds {@code max(15, 0.15 · max red)}.
     *
     * @param rgb uint8 {@code [H, W, 3]}
     */
    public static Tensor estimate(Tensor rgb) {
        TensorCheck.of("rgb", rgb).dtype(ScalarType.Byte).dims(3);
        if (rgb.size(2) != 3) {
            throw new IllegalArgumentException("rgb: expected [H, W, 3], got " + TensorCheck.shapeString(rgb));
        }
        Tensor red = rgb.select(2, 0);
        double max = red.max().item().toDouble();
        double thr = Math.max(15, 0.15 * max);
        return red.to(ScalarType.Float).gt(Torch.scalar(thr)).to(ScalarType.Byte).contiguous();
    }
}
