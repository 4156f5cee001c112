package dev.sa2va.io;

import dev.sa2va.core.JavaCppDefaults;
import dev.sa2va.core.Torch;
import java.awt.image.BufferedImage;
import java.io.BufferedInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.bytedeco.pytorch.Tensor;

/**
 * Image files to tensors. PNG, JPEG, GIF, BMP and TIFF go through the JDK's ImageIO; binary and ASCII
 * PPM/PGM (used by STARE) are read here because ImageIO has no reader for them.
 */
public final class Images {
    static {
        JavaCppDefaults.apply(); // before any JavaCPP class initialises (see JavaCppDefaults)
    }

    private Images() {
    }

    /** Reads an image file; the error names the file when it is missing, unreadable or of an unknown format. */
    public static BufferedImage read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IOException("image file not found: " + file);
        }
        byte[] bytes = Files.readAllBytes(file);
        return decode(bytes, file.toString());
    }

    /** Reads an image from a stream (e.g. a class-path resource); {@code name} is used in error messages. */
    public static BufferedImage read(InputStream in, String name) throws IOException {
        if (in == null) {
            throw new IOException("image not found: " + name);
        }
        try (InputStream s = new BufferedInputStream(in)) {
            return decode(s.readAllBytes(), name);
        }
    }

    static BufferedImage decode(byte[] bytes, String name) throws IOException {
        if (bytes.length >= 2 && bytes[0] == 'P' && bytes[1] >= '1' && bytes[1] <= '6') {
            return Netpbm.decode(bytes, name);
        }
        BufferedImage img;
        try {
            img = ImageIO.read(new ByteArrayInputStream(bytes));
        } catch (IOException | RuntimeException e) {
            throw new IOException("cannot decode image " + name + ": " + e.getMessage(), e);
        }
        if (img == null) {
            throw new IOException("cannot decode image " + name + ": unknown or unsupported format "
                    + "(supported: PNG, JPEG, GIF, BMP, TIFF, PPM/PGM)");
        }
        return img;
    }

    /**
     * A binary mask: uint8 {@code [H, W]} holding 1 where the image's level is at least 128, else 0.
     * (Mask files store 0/255, sometimes anti-aliased; in colour masks any bright channel counts.)
     */
    public static Tensor maskTensor(BufferedImage img) {
        int w = img.getWidth(), h = img.getHeight();
        int[] level = levels(img, true);
        byte[] out = new byte[w * h];
        for (int i = 0; i < out.length; i++) {
            out[i] = (byte) (level[i] >= 128 ? 1 : 0);
        }
        return Torch.fromBytes(out, h, w);
    }

    /**
     * 8-bit levels per pixel: the stored sample for gray images (ImageIO's getRGB would apply a gamma curve to
     * them, turning 127 into 187), else max(R, G, B) ({@code brightest}) or BT.601 luma.
     */
    static int[] levels(BufferedImage img, boolean brightest) {
        int w = img.getWidth(), h = img.getHeight();
        int[] out = new int[w * h];
        java.awt.image.Raster r = img.getRaster();
        boolean gray = img.getColorModel().getColorSpace().getType() == java.awt.color.ColorSpace.TYPE_GRAY;
        if (gray) {
            int bits = img.getColorModel().getComponentSize(0);
            int[] row = new int[w];
            for (int y = 0; y < h; y++) {
                r.getSamples(0, y, w, 1, 0, row);
                for (int x = 0; x < w; x++) {
                    out[y * w + x] = bits == 8 ? row[x] : (int) Math.round(row[x] * 255.0 / ((1 << bits) - 1));
                }
            }
            return out;
        }
        int[] row = new int[w];
        for (int y = 0; y < h; y++) {
            img.getRGB(0, y, w, 1, row, 0, w);
            for (int x = 0; x < w; x++) {
                int c = row[x], rr = (c >> 16) & 0xff, gg = (c >> 8) & 0xff, bb = c & 0xff;
                // ITU-R BT.601 luma, as PIL's convert("L")
                out[y * w + x] = brightest ? Math.max(rr, Math.max(gg, bb)) : (rr * 299 + gg * 587 + bb * 114 + 500) / 1000;
            }
        }
        return out;
    }

    /** Gray levels as float32 {@code [H, W]} in [0, 1] (e.g. a probability map saved as 8-bit PNG). */
    public static Tensor grayTensor(BufferedImage img) {
        int w = img.getWidth(), h = img.getHeight();
        int[] level = levels(img, false);
        float[] out = new float[w * h];
        for (int i = 0; i < out.length; i++) {
            out[i] = level[i] / 255f;
        }
        return Torch.fromFloats(out, h, w);
    }

    /** RGB as uint8 {@code [H, W, 3]}; a gray image gives its stored levels in all three channels (as PIL). */
    public static Tensor rgbTensor(BufferedImage img) {
        int w = img.getWidth(), h = img.getHeight();
        byte[] out = new byte[w * h * 3];
        if (img.getColorModel().getColorSpace().getType() == java.awt.color.ColorSpace.TYPE_GRAY) {
            int[] level = levels(img, false); // getRGB would apply a gamma curve to gray samples
            for (int i = 0; i < level.length; i++) {
                out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = (byte) level[i];
            }
            return Torch.fromBytes(out, h, w, 3);
        }
        int[] row = new int[w];
        for (int y = 0; y < h; y++) {
            img.getRGB(0, y, w, 1, row, 0, w);
            for (int x = 0; x < w; x++) {
                int c = row[x], o = (y * w + x) * 3;
                out[o] = (byte) (c >> 16);
                out[o + 1] = (byte) (c >> 8);
                out[o + 2] = (byte) c;
            }
        }
        return Torch.fromBytes(out, h, w, 3);
    }
}
