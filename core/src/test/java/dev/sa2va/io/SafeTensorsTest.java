package dev.sa2va.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeTensorsTest {
    @TempDir
    Path dir;

    /** A file laid out by hand from the format description: the reader must agree with the spec, not with itself. */
    static byte[] handMade(String header, byte[] data) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(data);
        return b.array();
    }

    static byte[] f32le(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            b.putFloat(f);
        }
        return b.array();
    }

    @Test
    void readsAHandMadeFile() throws IOException {
        byte[] data = concat(f32le(1, 2, 3, 4, 5, 6), new byte[] {(byte) 0x80, 0x3f, 0x00, 0x40}); // bf16 1.0, 2.0
        String header = "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[24,28]}}";
        Path f = dir.resolve("m.safetensors");
        Files.write(f, handMade(header, data));
        try (SafeTensors st = SafeTensors.open(f)) {
            assertEquals("pt", st.metadata().get("format"));
            Tensor w = st.get("w");
            assertArrayEquals(new long[] {2, 3}, dev.sa2va.core.TensorCheck.shapeOf(w));
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, Torch.toFloats(w));
            Tensor b = st.get("b");
            assertEquals(ScalarType.BFloat16, Torch.dtype(b));
            assertArrayEquals(new float[] {1, 2}, Torch.toFloats(b));
            Tensor bf = st.get("w", ScalarType.BFloat16, Devices.cpu());
            assertEquals(ScalarType.BFloat16, Torch.dtype(bf));
        }
    }

    @Test
    void roundTripsEveryDtype() throws IOException {
        Torch.seed(5);
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put("f32", Torch.randn(ScalarType.Float, Devices.cpu(), 3, 5));
        m.put("f16", Torch.randn(ScalarType.Half, Devices.cpu(), 7));
        m.put("bf16", Torch.randn(ScalarType.BFloat16, Devices.cpu(), 2, 2, 2));
        m.put("f64", Torch.randn(ScalarType.Double, Devices.cpu(), 4));
        m.put("i64", Torch.fromLongs(new long[] {-1, 5, Long.MAX_VALUE}, 3));
        m.put("u8", Torch.fromBytes(new byte[] {0, 1, (byte) 255}, 3));
        m.put("empty", Torch.empty(ScalarType.Float, Devices.cpu(), 0, 4));
        m.put("scalar", Torch.fromFloats(new float[] {3.5f}));
        m.put("noncontig", Torch.randn(ScalarType.Float, Devices.cpu(), 4, 6).transpose(0, 1));
        Path f = dir.resolve("rt.safetensors");
        SafeTensors.save(f, m, Map.of("who", "test"));
        assertEquals(0, headerLength(f) % 8, "header padded to a multiple of 8 bytes");
        try (SafeTensors st = SafeTensors.open(f)) {
            assertEquals("test", st.metadata().get("who"));
            for (var e : m.entrySet()) {
                Tensor got = st.get(e.getKey());
                assertEquals(Torch.dtype(e.getValue()), Torch.dtype(got), e.getKey());
                assertArrayEquals(dev.sa2va.core.TensorCheck.shapeOf(e.getValue()), dev.sa2va.core.TensorCheck.shapeOf(got));
                assertArrayEquals(Torch.toDoubles(e.getValue()), Torch.toDoubles(got), e.getKey());
            }
        }
    }

    static long headerLength(Path f) throws IOException {
        byte[] b = Arrays.copyOf(Files.readAllBytes(f), 8);
        return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    @Test
    void corruptFilesAreErrorsNamingFileAndTensor() throws IOException {
        Path f = dir.resolve("bad.safetensors");
        Files.write(f, new byte[] {1, 2, 3});
        assertMessage(f, "truncated safetensors file");
        Files.write(f, handMade("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[4]));
        assertMessage(f, "'w' data_offsets [0, 8] outside the data section (4 bytes)");
        Files.write(f, handMade("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8]));
        assertMessage(f, "'w' F32[3] needs 12 bytes but its data_offsets span 8");
        Files.write(f, handMade("{\"w\":{\"dtype\":\"F32\",", new byte[8]));
        assertMessage(f, "corrupt safetensors header");
        Files.write(f, handMade("{\"w\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", new byte[1]));
        assertMessage(f, "'w' has unknown dtype Q4");
        byte[] good = handMade("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8]);
        ByteBuffer.wrap(good).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1L << 40);
        Files.write(f, good);
        assertMessage(f, "corrupt safetensors header length");
    }

    static void assertMessage(Path f, String expected) {
        IOException e = assertThrows(IOException.class, () -> SafeTensors.open(f).close());
        assertTrue(e.getMessage().contains(expected) && e.getMessage().contains(f.getFileName().toString()),
                e.getMessage());
    }

    @Test
    void shardedCheckpointWithIndexChecksShapesAndTracksUse() throws IOException {
        Path ck = dir.resolve("ck");
        Files.createDirectories(ck);
        SafeTensors.save(ck.resolve("model-00001-of-00002.safetensors"),
                Map.of("a.weight", Torch.randn(ScalarType.Float, Devices.cpu(), 4, 3)), null);
        SafeTensors.save(ck.resolve("model-00002-of-00002.safetensors"),
                Map.of("b.weight", Torch.randn(ScalarType.Float, Devices.cpu(), 2), "b.bias", Torch.randn(ScalarType.Float, Devices.cpu(), 2)), null);
        Files.writeString(ck.resolve("model.safetensors.index.json"), "{\"metadata\":{},\"weight_map\":{"
                + "\"a.weight\":\"model-00001-of-00002.safetensors\",\"b.weight\":\"model-00002-of-00002.safetensors\","
                + "\"b.bias\":\"model-00002-of-00002.safetensors\"}}");
        try (Checkpoint c = Checkpoint.open(ck)) {
            assertEquals(3, c.keys().size());
            Tensor a = c.load("a.weight", new long[] {4, -1}, ScalarType.BFloat16, null);
            assertEquals(ScalarType.BFloat16, Torch.dtype(a));
            IOException shape = assertThrows(IOException.class, () -> c.load("b.weight", new long[] {3}, null, null));
            assertTrue(shape.getMessage().contains("'b.weight' has shape [2], expected [3]")
                    && shape.getMessage().contains("model-00002-of-00002.safetensors"), shape.getMessage());
            IOException missing = assertThrows(IOException.class, () -> c.load("c.weight", new long[] {1}, null, null));
            assertTrue(missing.getMessage().contains("missing tensor 'c.weight'"), missing.getMessage());
            assertEquals(List.of("b.bias", "b.weight"), c.unusedKeys("b."));
        }
        Files.delete(ck.resolve("model-00002-of-00002.safetensors"));
        IOException gone = assertThrows(IOException.class, () -> Checkpoint.open(ck).close());
        assertTrue(gone.getMessage().contains("shard model-00002-of-00002.safetensors"), gone.getMessage());
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
