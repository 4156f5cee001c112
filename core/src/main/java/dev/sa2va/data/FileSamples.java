package dev.sa2va.data;

import dev.sa2va.io.Images;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.zip.GZIPInputStream;
import org.bytedeco.pytorch.Tensor;

/**
 * Samples stored as files: an image, a ground-truth mask and optionally a field-of-view mask per sample, listed up
 * front and read on {@link #load}. Masks are foreground where their level is at least 128 ({@link Images#maskTensor});
 * files ending in {@code .gz} (STARE's distribution) are decompressed on the fly.
 */
public final class FileSamples implements SampleSource {
    /**
     * One sample's files.
     *
     * @param fov null when the dataset provides no field-of-view mask
     */
    public record Entry(String id, Path image, Path mask, Path fov) {
    }

    private final String name;
    private final List<Entry> entries;
    private final String text;
    private final boolean estimateFov;

    /**
     * @param estimateFov for entries without a FOV file, estimate the field of view from the image
     *                    ({@link FieldOfView#estimate}); otherwise such samples have no FOV
     */
    public FileSamples(String name, List<Entry> entries, String text, boolean estimateFov) {
        this.name = name;
        this.entries = List.copyOf(entries);
        this.text = text;
        this.estimateFov = estimateFov;
    }

    public List<Entry> entries() {
        return entries;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public int size() {
        return entries.size();
    }

    @Override
    public String id(int index) {
        checkIndex(index);
        return entries.get(index).id();
    }

    @Override
    public Sample load(int index) throws IOException {
        checkIndex(index);
        Entry e = entries.get(index);
        BufferedImage img = read(e.image());
        BufferedImage mask = read(e.mask());
        sameSize(e.image(), img, e.mask(), mask);
        Tensor fov = null;
        if (e.fov() != null) {
            BufferedImage f = read(e.fov());
            sameSize(e.image(), img, e.fov(), f);
            fov = Images.maskTensor(f);
        }
        Tensor rgb = Images.rgbTensor(img);
        if (fov == null && estimateFov) {
            fov = FieldOfView.estimate(rgb);
        }
        return new Sample(e.id(), e.image().toString(), rgb, Images.maskTensor(mask), fov, text);
    }

    /** Reads an image file, gunzipping {@code *.gz}; errors name the file. */
    public static BufferedImage read(Path file) throws IOException {
        if (!file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".gz")) {
            return Images.read(file);
        }
        if (!Files.isRegularFile(file)) {
            throw new IOException("image file not found: " + file);
        }
        try (InputStream in = new GZIPInputStream(Files.newInputStream(file))) {
            return Images.read(in, file.toString());
        } catch (java.util.zip.ZipException e) {
            throw new IOException("cannot decompress " + file + ": " + e.getMessage(), e);
        }
    }

    private static void sameSize(Path a, BufferedImage ia, Path b, BufferedImage ib) throws IOException {
        if (ia.getWidth() != ib.getWidth() || ia.getHeight() != ib.getHeight()) {
            throw new SizeMismatchException("size mismatch: " + b + " is " + ib.getWidth() + "x" + ib.getHeight() + " but image "
                    + a + " is " + ia.getWidth() + "x" + ia.getHeight());
        }
    }
}
