package dev.sa2va.sam2;

import dev.sa2va.metrics.MaskMetrics;
import java.util.List;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * Decoder output for a batch of prompts, float32 (the logits are cast before any resizing, as Sa2VA does):
 * low-resolution mask logits {@code masks} (B, K, 4h, 4w) with K = 3 (multimask) or 1, their predicted IoU
 * {@code iou} (B, K, sigmoid), the object-score logit (B, 1), the argmax-IoU index (B) and the selected mask
 * (B, 1, 4h, 4w). Nothing is thresholded: {@link #probabilities(Tensor)} and {@link #threshold(Tensor, double)}
 * apply on request. The object score never suppresses a mask (Sa2VA leaves that out).
 */
public final class Sam2Output {
    private final Tensor masks, iou, objectScore, bestIndex, bestMask, sparse;
    private final int imageSize;

    Sam2Output(Tensor masks, Tensor iou, Tensor objectScore, Tensor bestIndex, Tensor bestMask, Tensor sparse,
               int imageSize) {
        this.masks = masks;
        this.iou = iou;
        this.objectScore = objectScore;
        this.bestIndex = bestIndex;
        this.bestMask = bestMask;
        this.sparse = sparse;
        this.imageSize = imageSize;
    }

    public Tensor masks() {
        return masks;
    }

    public Tensor iou() {
        return iou;
    }

    public Tensor objectScore() {
        return objectScore;
    }

    /** int64 (B): which of the K masks has the highest predicted IoU. */
    public Tensor bestIndex() {
        return bestIndex;
    }

    /** (B, 1, 4h, 4w) logits of the selected mask (256² for SAM2 at 1024). */
    public Tensor bestMask() {
        return bestMask;
    }

    /** The sparse prompt tokens the decoder received (B, T, C), model dtype. */
    public Tensor sparseTokens() {
        return sparse;
    }

    /** Selected masks resized bilinearly (align_corners = false) to the model input, (B, 1, S, S) logits. */
    public Tensor upsampledSquare() {
        try (NoGradGuard g = new NoGradGuard()) {
            return torch.upsample_bilinear2d(bestMask, new long[] {imageSize, imageSize}, false);
        }
    }

    /**
     * Sa2VA's output for image {@code index}: the selected mask resized bilinearly to the model input, then
     * bilinearly again to the original {@code height × width} (align_corners = false both times), (1, 1, H, W)
     * logits.
     */
    public Tensor upsampled(int index, int height, int width) {
        if (index < 0 || index >= bestMask.size(0)) {
            throw new IllegalArgumentException("index: " + index + " outside the batch of " + bestMask.size(0));
        }
        if (height <= 0 || width <= 0) {
            throw new IllegalArgumentException("height, width: must be positive, got " + height + "x" + width);
        }
        try (NoGradGuard g = new NoGradGuard()) {
            return Scoped.tensor(() -> {
                Tensor sq = torch.upsample_bilinear2d(bestMask.narrow(0, index, 1), new long[] {imageSize, imageSize},
                        false);
                return torch.upsample_bilinear2d(sq, new long[] {height, width}, false);
            });
        }
    }

    /** sigmoid of logits: per-pixel foreground probabilities. */
    public static Tensor probabilities(Tensor logits) {
        return logits.sigmoid();
    }

    /**
     * Binary mask (bool) of {@code sigmoid(logits) > probability}, computed on the logits as
     * {@code logits > log(p / (1 − p))} (Sa2VA: p = 0.5, i.e. logits > 0).
     */
    public static Tensor threshold(Tensor logits, double probability) {
        return logits.gt(Nn.s(MaskMetrics.logitOf(probability)));
    }

    List<Tensor> tensors() {
        return List.of(masks, iou, objectScore, bestIndex, bestMask, sparse);
    }
}
