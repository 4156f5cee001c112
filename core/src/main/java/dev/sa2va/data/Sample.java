package dev.sa2va.data;

import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * One evaluation sample: an image, the ground-truth mask of what {@code text} refers to, and optionally the field
 * of view. All tensors are on the CPU.
 *
 * @param id      unique within its source (used in reports and overlay file names)
 * @param imageId identifies the image file: samples sharing it (several prompts on one image, as in Sa2VA's
 *                annotations.json) come one after another, so a segmenter can reuse image features
 * @param image   uint8 {@code [H, W, 3]} RGB
 * @param mask    uint8 {@code [H, W]}, 1 = foreground, 0 = background
 * @param fov     uint8 {@code [H, W]}, 1 = inside the field of view; null when the dataset has none
 * @param text    the referring expression, e.g. "blood vessels" (a segmenter wraps it in its own prompt)
 */
public record Sample(String id, String imageId, Tensor image, Tensor mask, Tensor fov, String text) {
    public Sample {
        if (id == null || id.isEmpty()) {
            throw new IllegalArgumentException("id: must be a non-empty string");
        }
        if (text == null) {
            throw new IllegalArgumentException(id + ": text is null");
        }
        TensorCheck.of(id + ": image", image).dtype(ScalarType.Byte).dims(3).nonEmpty();
        if (image.size(2) != 3) {
            throw new IllegalArgumentException(id + ": image must be [H, W, 3] RGB, got "
                    + TensorCheck.shapeString(image));
        }
        TensorCheck.of(id + ": mask", mask).dtype(ScalarType.Byte).shape(image.size(0), image.size(1));
        if (fov != null) {
            TensorCheck.of(id + ": fov", fov).dtype(ScalarType.Byte).shape(image.size(0), image.size(1));
        }
        if (imageId == null) {
            imageId = id;
        }
    }

    public int height() {
        return (int) image.size(0);
    }

    public int width() {
        return (int) image.size(1);
    }

    /** "565x584" (width x height). */
    public String sizeString() {
        return width() + "x" + height();
    }

    /** Number of foreground pixels of the mask. */
    public long foregroundPixels() {
        return Torch.toLongs(mask.count_nonzero())[0];
    }
}
