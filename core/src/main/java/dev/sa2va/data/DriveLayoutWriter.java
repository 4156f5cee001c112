package dev.sa2va.data;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.io.ImageFiles;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Writes samples as a dataset folder in the DRIVE layout, so that every DRIVE reader (ours:
 * {@link VesselDatasets#drive}; and the usual Python loaders) reads it:
 * <pre>
 * ROOT/SPLIT/images/NN_SPLIT.tif          RGB, LZW-compressed TIFF
 * ROOT/SPLIT/1st_manual/NN_manual1.gif    vessel mask, 0 / 255
 * ROOT/SPLIT/mask/NN_SPLIT_mask.gif       field of view, 0 / 255 (all 255 when the sample has none)
 * </pre>
 * SPLIT is {@code training} or {@code test}; NN counts from 01 (more digits when there are more than 99 samples).
 */
public final class DriveLayoutWriter {
    private DriveLayoutWriter() {
    }

    /**
     * Writes every sample of {@code source} under {@code root/split}.
     *
     * @param progress where to print one line per file written, or null
     * @return the number of samples written
     */
    public static int write(SampleSource source, Path root, String split, PrintStream progress) throws IOException {
        if (!split.equals("training") && !split.equals("test")) {
            throw new IllegalArgumentException("split must be 'training' or 'test' (DRIVE's folder names), got '"
                    + split + "'");
        }
        int n = source.size();
        int digits = Math.max(2, Integer.toString(n).length());
        Path dir = root.resolve(split);
        Files.createDirectories(dir.resolve("images"));
        Files.createDirectories(dir.resolve("1st_manual"));
        Files.createDirectories(dir.resolve("mask"));
        for (int i = 0; i < n; i++) {
            Sample s = source.load(i);
            String nn = String.format("%0" + digits + "d", i + 1);
            Path img = dir.resolve("images").resolve(nn + "_" + split + ".tif");
            ImageFiles.write(ImageFiles.rgbImage(s.image()), img);
            ImageFiles.write(ImageFiles.maskImage(s.mask()), dir.resolve("1st_manual").resolve(nn + "_manual1.gif"));
            Tensor fov = s.fov() != null ? s.fov() : Torch.full(1, ScalarType.Byte, Devices.cpu(), s.height(), s.width());
            ImageFiles.write(ImageFiles.maskImage(fov), dir.resolve("mask").resolve(nn + "_" + split + "_mask.gif"));
            if (progress != null) {
                progress.println("wrote " + img + " (" + s.id() + ")");
            }
        }
        return n;
    }
}
