package dev.sa2va.sam2;

import dev.sa2va.core.JavaCppDefaults;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.io.Images;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import org.bytedeco.pytorch.InterpolateFuncOptions;
import org.bytedeco.pytorch.LongVector;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.bytedeco.pytorch.kBicubic;

/**
 * Sa2VA's SAM2 input ({@code DirectResize} + {@code preprocess_image}): the RGB image stretched to
 * {@code imageSize × imageSize} (no letterbox, aspect ratio not kept), then (x / 255 − mean) / std with ImageNet
 * statistics. Sa2VA resizes with PIL's default bicubic filter (a = −0.5, antialiased when shrinking) on 8-bit
 * images; here libtorch's antialiased bicubic, which uses the same kernel, runs on float and the result is rounded
 * to 8-bit levels. That is within one level of PIL (see core/verification/sam2/NOTES.md).
 *
 * <p>Files: PNG, JPEG, GIF, BMP, TIFF (ImageIO) and PPM/PGM, through {@link Images}. Gray images are replicated to
 * three channels, alpha is dropped (PIL's {@code convert("RGB")}).
 */
public final class Sam2Preprocessor {
    static {
        JavaCppDefaults.apply(); // before any JavaCPP class initialises (see JavaCppDefaults)
    }

    public static final float[] MEAN = {0.485f, 0.456f, 0.406f};
    public static final float[] STD = {0.229f, 0.224f, 0.225f};

    /** Model input (1, 3, S, S) float32 on the CPU, with the original size for resizing masks back. */
    public record Prepared(Tensor pixels, int height, int width) {
    }

    private final int imageSize;

    public Sam2Preprocessor(int imageSize) {
        if (imageSize <= 0) {
            throw new IllegalArgumentException("imageSize: must be positive, got " + imageSize);
        }
        this.imageSize = imageSize;
    }

    /** Reads and prepares an image file; IOException naming the file if it is missing or not a readable image. */
    public Prepared fromFile(Path file) throws IOException {
        return fromImage(Images.read(file));
    }

    public Prepared fromImage(BufferedImage image) {
        if (image == null) {
            throw new IllegalArgumentException("image: null");
        }
        return new Prepared(fromRgb(Images.rgbTensor(image)), image.getHeight(), image.getWidth());
    }

    /** rgb uint8 (H, W, 3) -> (1, 3, S, S) float32 normalised, same device. */
    public Tensor fromRgb(Tensor rgb) {
        TensorCheck.of("rgb", rgb).dtype(ScalarType.Byte).cpuOrCuda().dims(3).nonEmpty();
        if (rgb.size(2) != 3) {
            throw new IllegalArgumentException("rgb: expected shape (H, W, 3), got " + TensorCheck.shapeString(rgb));
        }
        try (NoGradGuard g = new NoGradGuard()) {
            return Scoped.tensor(() -> {
                Tensor x = rgb.permute(2, 0, 1).unsqueeze(0).to(ScalarType.Float);
                InterpolateFuncOptions o = new InterpolateFuncOptions();
                o.size().put(new LongVector(imageSize, imageSize));
                o.mode().put(new kBicubic());
                o.align_corners().put(false);
                o.antialias().put(true);
                Tensor r = torch.interpolate(x, o).round().clamp(Nn.optional(0), Nn.optional(255)).div(Nn.s(255));
                Tensor mean = Torch.fromFloats(MEAN, 1, 3, 1, 1).to(rgb.device(), ScalarType.Float);
                Tensor std = Torch.fromFloats(STD, 1, 3, 1, 1).to(rgb.device(), ScalarType.Float);
                return r.sub(mean).div(std).contiguous();
            });
        }
    }

    public int imageSize() {
        return imageSize;
    }
}
