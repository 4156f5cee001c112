package dev.sa2va.mllm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sa2va.core.Torch;
import dev.sa2va.io.Images;
import dev.sa2va.io.SafeTensors;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

/**
 * Tiling against phase 1's fixture from Pillow 12.3 / Python 3.12 (tiling_fixture.py): the candidate order, the
 * grid of 355 image sizes (125 of them exact aspect ties), PIL's resize of three synthetic pictures to 12 sizes
 * (down and up), and a complete preprocessing (tiles, thumbnail, normalisation).
 */
class DynamicTilingTest {
    static final Path DIR = Fixtures.dir("tiling");

    static JsonObject json(String name) throws Exception {
        return JsonParser.parseString(Files.readString(DIR.resolve(name))).getAsJsonObject();
    }

    @Test
    void candidateOrderAndGridsMatchSa2va() throws Exception {
        JsonObject g = json("tiling_grids.json");
        JsonArray cands = g.getAsJsonArray("candidates");
        assertEquals(cands.size(), DynamicTiling.CANDIDATES.length);
        for (int i = 0; i < cands.size(); i++) {
            JsonArray c = cands.get(i).getAsJsonArray();
            assertArrayEquals(new int[] {c.get(0).getAsInt(), c.get(1).getAsInt()}, DynamicTiling.CANDIDATES[i], "candidate " + i);
        }
        DynamicTiling t = new DynamicTiling(g.get("tile_size").getAsInt());
        int n = 0;
        for (JsonElement e : g.getAsJsonArray("cases")) {
            JsonObject c = e.getAsJsonObject();
            int w = c.get("width").getAsInt(), h = c.get("height").getAsInt();
            JsonArray want = c.getAsJsonArray("grid");
            assertArrayEquals(new int[] {want.get(0).getAsInt(), want.get(1).getAsInt()}, t.grid(w, h), w + "x" + h);
            n++;
        }
        assertEquals(355, n);
    }

    static byte[] rgb(BufferedImage img) {
        return Torch.toBytes(Images.rgbTensor(img));
    }

    /**
     * PIL parity: the remaining difference of {@link PilResize} against Pillow, per case, in 8-bit levels
     * (printed; the bound asserted is the one documented in PilResize: identical bytes).
     */
    @Test
    void resizeReproducesPillowBytes() throws Exception {
        JsonObject r = json("resize_cases.json");
        int cases = 0;
        for (JsonElement e : r.getAsJsonArray("cases")) {
            JsonObject c = e.getAsJsonObject();
            BufferedImage src = Images.read(DIR.resolve(c.get("source").getAsString()));
            BufferedImage want = Images.read(DIR.resolve(c.get("output").getAsString()));
            int w = c.get("width").getAsInt(), h = c.get("height").getAsInt();
            byte[] got = PilResize.resize(rgb(src), src.getWidth(), src.getHeight(), w, h);
            byte[] exp = rgb(want);
            int max = 0;
            long sum = 0;
            for (int i = 0; i < exp.length; i++) {
                int d = Math.abs((got[i] & 0xff) - (exp[i] & 0xff));
                max = Math.max(max, d);
                sum += d;
            }
            System.out.printf("PIL resize %s -> %dx%d: max |diff| %d LSB, mean %.4f LSB%n", c.get("source").getAsString(),
                    w, h, max, (double) sum / exp.length);
            assertEquals(0, max, c.get("output").getAsString() + ": bytes differ from Pillow " + r.get("pillow_version"));
            cases++;
        }
        assertEquals(12, cases);
    }

    @Test
    void preprocessingMatchesSa2vaTilesBitForBit() throws Exception {
        BufferedImage src = Images.read(DIR.resolve("resize_src_vessels.png"));
        DynamicTiling.Tiles tiles = new DynamicTiling(448).tiles(src);
        try (SafeTensors st = SafeTensors.open(DIR.resolve("tiles_vessels.safetensors"))) {
            String[] grid = st.metadata().get("grid").split(",");
            assertEquals(Integer.parseInt(grid[0]), tiles.columns());
            assertEquals(Integer.parseInt(grid[1]), tiles.rows());
            Tensor want = st.get("pixel_values_corner64");
            assertEquals(want.size(0), tiles.count());
            Tensor got = tiles.pixelValues().narrow(2, 0, 64).narrow(3, 0, 64).contiguous();
            // float32 ToTensor + Normalize are correctly rounded single operations: equal bits, not just close
            assertArrayEquals(Torch.toFloats(want), Torch.toFloats(got));
        }
    }

    @Test
    void badArgumentsAreRejected() {
        DynamicTiling t = new DynamicTiling(448);
        assertThrows(IllegalArgumentException.class, () -> t.grid(0, 10));
        assertThrows(IllegalArgumentException.class, () -> PilResize.resize(new byte[5], 2, 1, 4, 4));
        assertThrows(IllegalArgumentException.class, () -> new DynamicTiling(0));
    }
}
