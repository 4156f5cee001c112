package dev.sa2va.eval;

import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * An error map over the image: true positives green, false positives red, false negatives blue (blended over a
 * dimmed copy of the image so that the colours stand out), true negatives show the dimmed image, and pixels
 * outside the field of view are darker still.
 */
public final class Overlay {
    public static final int[] TP = {0, 230, 0};
    public static final int[] FP = {255, 40, 40};
    public static final int[] FN = {40, 120, 255};

    private Overlay() {
    }

    /**
     * @param image     uint8 {@code [H, W, 3]}
     * @param predicted {@code [H, W]}, non-zero = predicted foreground
     * @param truth     uint8 {@code [H, W]}, non-zero = foreground
     * @param fov       uint8 {@code [H, W]} or null
     * @return uint8 {@code [H, W, 3]} on the CPU
     */
    public static Tensor render(Tensor image, Tensor predicted, Tensor truth, Tensor fov) {
        TensorCheck.of("image", image).dtype(ScalarType.Byte).dims(3);
        int h = (int) image.size(0), w = (int) image.size(1);
        TensorCheck.of("predicted", predicted).shape(h, w);
        TensorCheck.of("truth", truth).shape(h, w);
        byte[] img = Torch.toBytes(image);
        byte[] pr = Torch.toBytes(predicted.ne(Torch.scalar(0L)));
        byte[] gt = Torch.toBytes(truth.ne(Torch.scalar(0L)));
        byte[] in = fov == null ? null : Torch.toBytes(fov.ne(Torch.scalar(0L)));
        byte[] out = new byte[img.length];
        for (int i = 0; i < h * w; i++) {
            int[] col = pr[i] != 0 ? (gt[i] != 0 ? TP : FP) : (gt[i] != 0 ? FN : null);
            double dim = in != null && in[i] == 0 ? 0.35 : 0.6;
            for (int c = 0; c < 3; c++) {
                double v = (img[3 * i + c] & 0xff) * dim;
                if (col != null) {
                    v = 0.25 * v + 0.75 * col[c];
                }
                out[3 * i + c] = (byte) Math.min(255, (int) Math.round(v));
            }
        }
        return Torch.fromBytes(out, h, w, 3);
    }
}
