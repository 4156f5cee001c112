package dev.sa2va.io;

import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Locale;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/** Tensors to image files (the writing counterpart of {@link Images}), through the JDK's ImageIO writers. */
public final class ImageFiles {
    private ImageFiles() {
    }

    /** uint8 {@code [H, W, 3]} RGB to an image. */
    public static BufferedImage rgbImage(Tensor rgb) {
        TensorCheck.of("rgb", rgb).dtype(ScalarType.Byte).dims(3);
        if (rgb.size(2) != 3) {
            throw new IllegalArgumentException("rgb: expected [H, W, 3], got " + TensorCheck.shapeString(rgb));
        }
        int h = (int) rgb.size(0), w = (int) rgb.size(1);
        byte[] b = Torch.toBytes(rgb);
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        int[] row = new int[w];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int o = 3 * (y * w + x);
                row[x] = ((b[o] & 0xff) << 16) | ((b[o + 1] & 0xff) << 8) | (b[o + 2] & 0xff);
            }
            img.setRGB(0, y, w, 1, row, 0, w);
        }
        return img;
    }

    /** uint8 {@code [H, W]} mask to an 8-bit gray image holding 255 where the mask is non-zero, else 0. */
    public static BufferedImage maskImage(Tensor mask) {
        TensorCheck.of("mask", mask).dtype(ScalarType.Byte).dims(2);
        int h = (int) mask.size(0), w = (int) mask.size(1);
        byte[] b = Torch.toBytes(mask);
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_BYTE_GRAY);
        int[] row = new int[w];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                row[x] = b[y * w + x] != 0 ? 255 : 0;
            }
            img.getRaster().setSamples(0, y, w, 1, 0, row);
        }
        return img;
    }

    /**
     * Writes {@code img} in the format named by the file's extension: png, tif/tiff (LZW), gif, jpg/jpeg, bmp.
     * Parent folders are created.
     */
    public static void write(BufferedImage img, Path file) throws IOException {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        String format;
        if (name.endsWith(".png")) {
            format = "png";
        } else if (name.endsWith(".tif") || name.endsWith(".tiff")) {
            format = "tiff";
        } else if (name.endsWith(".gif")) {
            format = "gif";
        } else if (name.endsWith(".jpg") || name.endsWith(".jpeg")) {
            format = "jpeg";
        } else if (name.endsWith(".bmp")) {
            format = "bmp";
        } else {
            throw new IOException("cannot write " + file + ": unknown image extension (png, tif, gif, jpg, bmp)");
        }
        if (file.getParent() != null) {
            Files.createDirectories(file.getParent());
        }
        Iterator<ImageWriter> it = ImageIO.getImageWritersByFormatName(format);
        if (!it.hasNext()) {
            throw new IOException("cannot write " + file + ": this JDK has no " + format + " writer");
        }
        ImageWriter writer = it.next();
        try (OutputStream os = Files.newOutputStream(file); ImageOutputStream ios = ImageIO.createImageOutputStream(os)) {
            writer.setOutput(ios);
            ImageWriteParam p = writer.getDefaultWriteParam();
            if (format.equals("tiff")) {
                // LZW: lossless, and what most TIFF readers (PIL, OpenCV, ImageJ) accept
                p.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
                p.setCompressionType("LZW");
            } else if (format.equals("jpeg")) {
                p.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
                p.setCompressionQuality(0.95f);
            }
            writer.write(null, new IIOImage(img, null, null), p);
        } catch (IOException | RuntimeException e) {
            throw new IOException("cannot write " + file + ": " + e.getMessage(), e);
        } finally {
            writer.dispose();
        }
    }
}
