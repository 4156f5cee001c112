package dev.sa2va.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Torch;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The .npy layout as NumPy's format 1.0 specifies it. */
class NpyTest {
    @TempDir
    Path dir;

    @Test
    void headerAndDataFollowTheFormat() throws IOException {
        Path f = dir.resolve("a.npy");
        try (Npy n = new Npy(f, ScalarType.Byte, 2, 3, 2)) {
            n.append(Torch.fromBytes(new byte[] {1, 2, 3, 4, 5, 6}, 3, 2));
            n.append(Torch.fromBytes(new byte[] {7, 8, 9, 10, 11, (byte) 255}, 1, 3, 2));
        }
        byte[] b = Files.readAllBytes(f);
        assertArrayEquals(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}, Arrays.copyOf(b, 8));
        int hl = (b[8] & 0xff) | (b[9] & 0xff) << 8;
        assertEquals(0, (10 + hl) % 64, "data starts on a 64-byte boundary");
        String header = new String(b, 10, hl, StandardCharsets.US_ASCII);
        assertTrue(header.startsWith("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 2), }"), header);
        assertTrue(header.endsWith("\n"));
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, (byte) 255}, Arrays.copyOfRange(b, 10 + hl,
                b.length));

        Path g = dir.resolve("f.npy");
        Npy.write(g, Torch.fromFloats(new float[] {1.5f, -2f, 3.25f}, 3));
        byte[] c = Files.readAllBytes(g);
        int gl = (c[8] & 0xff) | (c[9] & 0xff) << 8;
        assertTrue(new String(c, 10, gl, StandardCharsets.US_ASCII).contains("'descr': '<f4'")
                && new String(c, 10, gl, StandardCharsets.US_ASCII).contains("'shape': (3,)"));
        ByteBuffer d = ByteBuffer.wrap(c, 10 + gl, 12).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(1.5f, d.getFloat());
        assertEquals(-2f, d.getFloat());
        assertEquals(3.25f, d.getFloat());
    }

    @Test
    void wrongShapesAndShortFilesAreErrors() throws IOException {
        Npy n = new Npy(dir.resolve("b.npy"), ScalarType.Byte, 2, 4);
        assertThrows(IllegalArgumentException.class, () -> n.append(Torch.fromBytes(new byte[3], 3)));
        assertThrows(IllegalArgumentException.class, () -> n.append(Torch.fromFloats(new float[4], 4)));
        n.append(Torch.fromBytes(new byte[4], 4));
        IOException e = assertThrows(IOException.class, n::close);
        assertTrue(e.getMessage().contains("4 of 8"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Npy.write(dir.resolve("c.npy"),
                Torch.fromFloats(new float[2], 2).to(ScalarType.BFloat16)));
    }
}
