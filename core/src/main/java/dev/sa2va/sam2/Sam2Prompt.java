package dev.sa2va.sam2;

import dev.sa2va.core.JavaCppDefaults;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * What to segment, for a batch of B images: Sa2VA's language embedding, points, a box, or a box with points.
 * Coordinates are pixels of the model input (the {@code imageSize}² stretched image, x then y, not normalised);
 * {@link #scaledFrom(int, int, int)} converts from original-image pixels. Point labels: 1 foreground, 0
 * background, −1 not-a-point (padding), 2 / 3 box corners.
 *
 * <p>Tensors: points {@code (B, N, 2)} float, labels {@code (B, N)} int32/int64, boxes {@code (B, 4)} as x1, y1,
 * x2, y2, language {@code (B, C)} float with C the model's hidden size (256 for real SAM2).
 */
public final class Sam2Prompt {
    static {
        JavaCppDefaults.apply(); // before any JavaCPP class initialises (see JavaCppDefaults)
    }

    /** The kinds of prompt; each becomes a different run of sparse tokens. */
    public enum Kind { LANGUAGE, POINTS, BOX, BOX_AND_POINTS }

    private final Kind kind;
    private final Tensor points;
    private final Tensor labels;
    private final Tensor boxes;
    private final Tensor language;

    private Sam2Prompt(Kind kind, Tensor points, Tensor labels, Tensor boxes, Tensor language) {
        this.kind = kind;
        this.points = points;
        this.labels = labels;
        this.boxes = boxes;
        this.language = language;
    }

    /**
     * Sa2VA's prompt: two not-a-point tokens followed by the language embedding ({@code text_hidden_fcs} output of
     * the [SEG] token), {@code (B, C)} or {@code (C)} for one image.
     */
    public static Sam2Prompt language(Tensor embedding) {
        TensorCheck.of("language", embedding).dtype(TensorCheck.FLOAT_TYPES).cpuOrCuda().nonEmpty();
        if (embedding.dim() != 1 && embedding.dim() != 2) {
            throw new IllegalArgumentException("language: expected shape (C) or (B, C), got "
                    + TensorCheck.shapeString(embedding));
        }
        return new Sam2Prompt(Kind.LANGUAGE, null, null, null, embedding.dim() == 1 ? embedding.unsqueeze(0) : embedding);
    }

    /** Points {@code (B, N, 2)} with labels {@code (B, N)}. */
    public static Sam2Prompt points(Tensor points, Tensor labels) {
        checkPoints(points, labels);
        return new Sam2Prompt(Kind.POINTS, points, labels, null, null);
    }

    /** One image: {@code xy[i] = {x, y}} with {@code labels[i]}. */
    public static Sam2Prompt points(float[][] xy, int[] labels) {
        if (xy == null || labels == null || xy.length == 0 || xy.length != labels.length) {
            throw new IllegalArgumentException("points: need the same positive number of points and labels, got "
                    + (xy == null ? "null" : xy.length) + " and " + (labels == null ? "null" : labels.length));
        }
        float[] flat = new float[2 * xy.length];
        long[] lab = new long[labels.length];
        for (int i = 0; i < xy.length; i++) {
            if (xy[i] == null || xy[i].length != 2) {
                throw new IllegalArgumentException("points: point " + i + " must be {x, y}");
            }
            flat[2 * i] = xy[i][0];
            flat[2 * i + 1] = xy[i][1];
            lab[i] = labels[i];
        }
        return points(Torch.fromFloats(flat, 1, xy.length, 2), Torch.fromLongs(lab, 1, labels.length));
    }

    /** Boxes {@code (B, 4)}: x1, y1, x2, y2. */
    public static Sam2Prompt box(Tensor boxes) {
        checkBoxes(boxes);
        return new Sam2Prompt(Kind.BOX, null, null, boxes, null);
    }

    /** One image, one box. */
    public static Sam2Prompt box(float x1, float y1, float x2, float y2) {
        return box(Torch.fromFloats(new float[] {x1, y1, x2, y2}, 1, 4));
    }

    /** A box with points in the same batch (tokens: the points, then the two box corners). */
    public static Sam2Prompt boxAndPoints(Tensor boxes, Tensor points, Tensor labels) {
        checkBoxes(boxes);
        checkPoints(points, labels);
        if (boxes.size(0) != points.size(0)) {
            throw new IllegalArgumentException("boxes: batch " + boxes.size(0) + " does not match points batch "
                    + points.size(0));
        }
        return new Sam2Prompt(Kind.BOX_AND_POINTS, points, labels, boxes, null);
    }

    private static void checkPoints(Tensor points, Tensor labels) {
        TensorCheck.of("points", points).dtype(TensorCheck.FLOAT_TYPES).cpuOrCuda().dims(3).nonEmpty();
        if (points.size(2) != 2) {
            throw new IllegalArgumentException("points: expected shape (B, N, 2), got " + TensorCheck.shapeString(points));
        }
        TensorCheck.of("labels", labels).dtype(ScalarType.Long, ScalarType.Int).dims(2).sameDevice("points", points);
        if (labels.size(0) != points.size(0) || labels.size(1) != points.size(1)) {
            throw new IllegalArgumentException("labels: shape " + TensorCheck.shapeString(labels)
                    + " does not match points shape " + TensorCheck.shapeString(points) + " (expected (B, N))");
        }
        long lo = labels.min().item().toLong(), hi = labels.max().item().toLong();
        if (lo < -1 || hi > 3) {
            throw new IllegalArgumentException("labels: values must be in {-1, 0, 1, 2, 3}, found range [" + lo + ", "
                    + hi + "]");
        }
    }

    private static void checkBoxes(Tensor boxes) {
        TensorCheck.of("boxes", boxes).dtype(TensorCheck.FLOAT_TYPES).cpuOrCuda().dims(2).nonEmpty();
        if (boxes.size(1) != 4) {
            throw new IllegalArgumentException("boxes: expected shape (B, 4) as x1, y1, x2, y2, got "
                    + TensorCheck.shapeString(boxes));
        }
    }

    /**
     * The same prompt with coordinates given in pixels of an {@code height × width} original image, mapped to the
     * {@code imageSize}² model input (Sa2VA stretches without letterbox: x · imageSize / width, y · imageSize /
     * height).
     */
    public Sam2Prompt scaledFrom(int height, int width, int imageSize) {
        if (height <= 0 || width <= 0 || imageSize <= 0) {
            throw new IllegalArgumentException("scaledFrom: sizes must be positive, got " + height + "x" + width
                    + " -> " + imageSize);
        }
        Tensor sxy = Torch.fromFloats(new float[] {(float) imageSize / width, (float) imageSize / height}, 2);
        Tensor p = points == null ? null : points.mul(sxy.to(points.device(), Torch.dtype(points)));
        Tensor b = boxes == null ? null
                : boxes.mul(sxy.repeat(2).to(boxes.device(), Torch.dtype(boxes)));
        return new Sam2Prompt(kind, p, labels, b, language);
    }

    public Kind kind() {
        return kind;
    }

    /** Images in the batch. */
    public long batch() {
        return language != null ? language.size(0) : points != null ? points.size(0) : boxes.size(0);
    }

    Tensor points() {
        return points;
    }

    Tensor labels() {
        return labels;
    }

    Tensor boxes() {
        return boxes;
    }

    Tensor language() {
        return language;
    }
}
