package dev.sa2va.model;

import dev.sa2va.metrics.MaskMetrics;
import org.bytedeco.pytorch.Tensor;

/**
 * One mask, for one [SEG] token of the answer, at the original image resolution. Nothing is thresholded until asked:
 * {@link #logits()} are SAM2's selected low-resolution logits resized bilinearly to the model input and again to
 * the image size (Sa2VA's two steps), {@link #probabilities()} their sigmoid, {@link #binary()} Sa2VA's mask
 * ({@code sigmoid > threshold}; Sa2VA itself returns only that, at 0.5).
 */
public final class SegMask {
    private final Tensor logits;
    private final Tensor lowResLogits;
    private final Tensor promptEmbedding;
    private final double[] iouScores;
    private final double objectScore;
    private final int selected;
    private final double threshold;

    SegMask(Tensor logits, Tensor lowResLogits, Tensor promptEmbedding, double[] iouScores, double objectScore,
            int selected, double threshold) {
        this.logits = logits;
        this.lowResLogits = lowResLogits;
        this.promptEmbedding = promptEmbedding;
        this.iouScores = iouScores.clone();
        this.objectScore = objectScore;
        this.selected = selected;
        this.threshold = threshold;
    }

    /** float32 {@code [H, W]} logits, on the model's device. */
    public Tensor logits() {
        return logits;
    }

    /** float32 {@code [H, W]} foreground probabilities (a new tensor). */
    public Tensor probabilities() {
        return logits.sigmoid();
    }

    /** bool {@code [H, W]}: probability above the threshold of the request (default 0.5). */
    public Tensor binary() {
        return binary(threshold);
    }

    /** bool {@code [H, W]}: probability above {@code probability}, computed as logits > log(p / (1 − p)). */
    public Tensor binary(double probability) {
        return logits.gt(dev.sa2va.core.Torch.scalar(MaskMetrics.logitOf(probability)));
    }

    /** float32 {@code [4h, 4w]} logits of the selected mask before resizing (256² for SAM2 at 1024). */
    public Tensor lowResLogits() {
        return lowResLogits;
    }

    /** SAM2's predicted IoU of the selected mask (sigmoid output, the highest of the three). */
    public double iouScore() {
        return iouScores[selected];
    }

    /** SAM2's predicted IoU of each of its outputs (3 in multimask mode). */
    public double[] iouScores() {
        return iouScores.clone();
    }

    /** The [SEG] token's SAM2 prompt embedding ({@code text_hidden_fcs} output, 256), model dtype and device. */
    public Tensor promptEmbedding() {
        return promptEmbedding;
    }

    /** SAM2's object-score logit (reported only: Sa2VA never suppresses a mask with it). */
    public double objectScore() {
        return objectScore;
    }

    /** Which of SAM2's three multimask outputs was selected (argmax of predicted IoU). */
    public int selectedOutput() {
        return selected;
    }

    public double threshold() {
        return threshold;
    }

    void close() {
        logits.close();
        lowResLogits.close();
        promptEmbedding.close();
    }
}
