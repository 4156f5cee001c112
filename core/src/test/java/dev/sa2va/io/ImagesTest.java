package dev.sa2va.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Torch;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImagesTest {
    @TempDir
    Path dir;

    @Test
    void readsBinaryAndAsciiNetpbm() throws IOException {
        // 2x1 RGB: red, blue; with a comment in the header
        byte[] p6 = concat("P6\n# made by a test\n2 1\n255\n".getBytes(StandardCharsets.US_ASCII),
                new byte[] {(byte) 255, 0, 0, 0, 0, (byte) 255});
        Path f = dir.resolve("a.ppm");
        Files.write(f, p6);
        BufferedImage img = Images.read(f);
        assertEquals(0xff0000, img.getRGB(0, 0) & 0xffffff);
        assertEquals(0x0000ff, img.getRGB(1, 0) & 0xffffff);
        assertArrayEquals(new byte[] {(byte) 255, 0, 0, 0, 0, (byte) 255}, Torch.toBytes(Images.rgbTensor(img)));
        Path g = dir.resolve("b.pgm");
        Files.writeString(g, "P2 3 1 15\n0 15 8\n");
        assertArrayEquals(new byte[] {0, 1, 1}, Torch.toBytes(Images.maskTensor(Images.read(g))));
        Path t = dir.resolve("t.ppm");
        Files.write(t, java.util.Arrays.copyOf(p6, p6.length - 2));
        IOException e = assertThrows(IOException.class, () -> Images.read(t));
        assertTrue(e.getMessage().contains("t.ppm: truncated"), e.getMessage());
    }

    @Test
    void pngMaskAndErrorsNameTheFile() throws IOException {
        BufferedImage img = new BufferedImage(3, 2, BufferedImage.TYPE_BYTE_GRAY);
        img.getRaster().setSample(1, 0, 0, 255);
        img.getRaster().setSample(2, 1, 0, 127);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(img, "png", out);
        Path f = dir.resolve("m.png");
        Files.write(f, out.toByteArray());
        assertArrayEquals(new byte[] {0, 1, 0, 0, 0, 0}, Torch.toBytes(Images.maskTensor(Images.read(f))));
        IOException missing = assertThrows(IOException.class, () -> Images.read(dir.resolve("nope.png")));
        assertTrue(missing.getMessage().contains("nope.png"), missing.getMessage());
        Path junk = dir.resolve("junk.png");
        Files.writeString(junk, "not an image");
        IOException bad = assertThrows(IOException.class, () -> Images.read(junk));
        assertTrue(bad.getMessage().contains("junk.png"), bad.getMessage());
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
