package dev.sa2va.sam2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.io.Images;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import javax.imageio.ImageIO;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Sa2VA's SAM2 preprocessing (1024 stretch + ImageNet normalisation) and the image formats of vessel datasets. */
class Sam2PreprocessorTest {
    @TempDir
    Path dir;

    static final Map<String, Tensor> IN = Sam2Fixtures.inputs();

    /** |a − b| in 8-bit levels of the un-normalised image. */
    static double[] levelDiff(Tensor a, Tensor b) {
        Tensor std = Torch.fromFloats(Sam2Preprocessor.STD, 1, 3, 1, 1);
        Tensor d = a.sub(b).abs().mul(std).mul(Nn.s(255));
        return new double[] {Torch.toDoubles(d.max())[0], Torch.toDoubles(d.mean())[0]};
    }

    @Test
    void pngFilesGiveTheFixturePixelValues() throws IOException {
        Sam2Preprocessor pre = new Sam2Preprocessor(128);
        for (int i = 0; i < 2; i++) {
            Sam2Preprocessor.Prepared p = pre.fromFile(Sam2Fixtures.image(i));
            Tensor raw = IN.get("image." + i);
            assertEquals(raw.size(0), p.height());
            assertEquals(raw.size(1), p.width());
            assertArrayEquals(Torch.toBytes(raw), Torch.toBytes(Images.rgbTensor(Images.read(Sam2Fixtures.image(i)))),
                    "PNG decodes to the fixture's raw image exactly");
            Tensor want = IN.get("pixel_values").narrow(0, i, 1);
            assertArrayEquals(TensorCheck.shapeOf(want), TensorCheck.shapeOf(p.pixels()));
            // same resampling kernel as the fixture's, so only rounding ties may differ by one level
            double[] d = levelDiff(p.pixels(), want);
            assertTrue(d[0] <= 1.0001 && d[1] < 0.01, "image " + i + ": max " + d[0] + " mean " + d[1] + " levels");
        }
    }

    @Test
    void constantImageNormalisesToImageNetValues() {
        byte[] px = new byte[40 * 70 * 3];
        int[] rgb = {200, 17, 96};
        for (int i = 0; i < 40 * 70; i++) {
            for (int c = 0; c < 3; c++) {
                px[3 * i + c] = (byte) rgb[c];
            }
        }
        Tensor x = new Sam2Preprocessor(64).fromRgb(Torch.fromBytes(px, 40, 70, 3));
        assertArrayEquals(new long[] {1, 3, 64, 64}, TensorCheck.shapeOf(x));
        for (int c = 0; c < 3; c++) {
            double want = (rgb[c] / 255.0 - Sam2Preprocessor.MEAN[c]) / Sam2Preprocessor.STD[c];
            Tensor ch = x.select(1, c);
            assertEquals(want, Torch.toDoubles(ch.min())[0], 1e-5);
            assertEquals(want, Torch.toDoubles(ch.max())[0], 1e-5);
        }
    }

    @Test
    void losslessFormatsDecodeLikeThePng() throws IOException {
        BufferedImage png = Images.read(Sam2Fixtures.image(1));
        byte[] want = Torch.toBytes(Images.rgbTensor(png));
        for (String fmt : new String[] {"tiff", "bmp"}) {
            Path f = dir.resolve("img." + fmt);
            BufferedImage bgr = new BufferedImage(png.getWidth(), png.getHeight(), BufferedImage.TYPE_3BYTE_BGR);
            bgr.getGraphics().drawImage(png, 0, 0, null);
            assertTrue(ImageIO.write(bgr, fmt, f.toFile()), "ImageIO writes " + fmt);
            assertArrayEquals(want, Torch.toBytes(Images.rgbTensor(Images.read(f))), fmt);
        }
        // binary PPM (P6), laid out by hand from the Netpbm spec
        Path ppm = dir.resolve("img.ppm");
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.write(("P6\n# vessels\n" + png.getWidth() + " " + png.getHeight() + "\n255\n").getBytes(StandardCharsets.US_ASCII));
        b.write(want);
        Files.write(ppm, b.toByteArray());
        Sam2Preprocessor.Prepared p = new Sam2Preprocessor(128).fromFile(ppm);
        Sam2Preprocessor.Prepared q = new Sam2Preprocessor(128).fromFile(Sam2Fixtures.image(1));
        assertEquals(0.0, Torch.relError(p.pixels(), q.pixels()), "PPM and PNG of the same pixels");
    }

    @Test
    void jpegAndGifAreRead() throws IOException {
        BufferedImage png = Images.read(Sam2Fixtures.image(0));
        BufferedImage bgr = new BufferedImage(png.getWidth(), png.getHeight(), BufferedImage.TYPE_3BYTE_BGR);
        bgr.getGraphics().drawImage(png, 0, 0, null);
        Path jpg = dir.resolve("img.jpg");
        assertTrue(ImageIO.write(bgr, "jpeg", jpg.toFile()));
        Sam2Preprocessor pre = new Sam2Preprocessor(128);
        double[] d = levelDiff(pre.fromFile(jpg).pixels(), pre.fromFile(Sam2Fixtures.image(0)).pixels());
        // lossy (quality 0.75 on a noisy image), but a channel swap would be ~100 levels off
        assertTrue(d[1] < 15, "JPEG is lossy but close: mean " + d[1] + " levels");
        BufferedImage indexed = new BufferedImage(32, 24, BufferedImage.TYPE_BYTE_INDEXED);
        for (int y = 0; y < 24; y++) {
            for (int x = 0; x < 32; x++) {
                indexed.setRGB(x, y, (x * 8) << 16 | (y * 10) << 8 | 255);
            }
        }
        Path gif = dir.resolve("img.gif");
        assertTrue(ImageIO.write(indexed, "gif", gif.toFile()));
        assertArrayEquals(Torch.toBytes(Images.rgbTensor(indexed)), Torch.toBytes(Images.rgbTensor(Images.read(gif))));
        assertEquals(24, pre.fromFile(gif).height());
    }

    @Test
    void grayImagesKeepTheirLevels() {
        BufferedImage g = new BufferedImage(5, 3, BufferedImage.TYPE_BYTE_GRAY);
        g.getRaster().setSample(1, 1, 0, 127);
        g.getRaster().setSample(4, 2, 0, 250);
        byte[] rgb = Torch.toBytes(Images.rgbTensor(g));
        int at11 = (1 * 5 + 1) * 3, at42 = (2 * 5 + 4) * 3;
        for (int c = 0; c < 3; c++) {
            assertEquals(127, rgb[at11 + c] & 0xff, "gray 127 stays 127 in every channel (no gamma curve)");
            assertEquals(250, rgb[at42 + c] & 0xff);
            assertEquals(0, rgb[c] & 0xff);
        }
    }

    @Test
    void badFilesAreIoExceptionsNamingTheFile() throws IOException {
        Sam2Preprocessor pre = new Sam2Preprocessor(128);
        Path missing = dir.resolve("nope.png");
        IOException e1 = assertThrows(IOException.class, () -> pre.fromFile(missing));
        assertTrue(e1.getMessage().contains("nope.png"), e1.getMessage());
        Path junk = dir.resolve("junk.png");
        Files.write(junk, new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9});
        IOException e2 = assertThrows(IOException.class, () -> pre.fromFile(junk));
        assertTrue(e2.getMessage().contains("junk.png"), e2.getMessage());
        Path truncated = dir.resolve("cut.ppm");
        Files.write(truncated, "P6\n10 10\n255\n\u0001\u0002".getBytes(StandardCharsets.ISO_8859_1));
        IOException e3 = assertThrows(IOException.class, () -> pre.fromFile(truncated));
        assertTrue(e3.getMessage().contains("cut.ppm"), e3.getMessage());
    }

    @Test
    void badTensorsAreRejected() {
        Sam2Preprocessor pre = new Sam2Preprocessor(64);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> pre.fromRgb(Torch.zeros(org.bytedeco.pytorch.global.torch.ScalarType.Byte,
                        dev.sa2va.core.Devices.cpu(), 5, 5, 4)));
        assertTrue(e.getMessage().contains("rgb"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> pre.fromRgb(Torch.zeros(
                org.bytedeco.pytorch.global.torch.ScalarType.Float, dev.sa2va.core.Devices.cpu(), 5, 5, 3)));
        assertThrows(IllegalArgumentException.class, () -> new Sam2Preprocessor(0));
    }
}
