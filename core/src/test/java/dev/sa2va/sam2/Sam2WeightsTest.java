package dev.sa2va.sam2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.io.SafeTensors;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loading SAM2 weights by Sa2VA and original names, and every way a checkpoint can fail to match. */
class Sam2WeightsTest {
    static final String P = Sam2Weights.SA2VA_PREFIX;

    @TempDir
    Path dir;

    static Map<String, Tensor> fixtureWeights() {
        return Sam2Fixtures.readAll(Sam2Fixtures.weights());
    }

    Path write(String name, Map<String, Tensor> m) throws IOException {
        Path f = dir.resolve(name);
        SafeTensors.save(f, m, Map.of());
        return f;
    }

    IOException loadFails(Path f, Sam2Config c, String prefix) {
        return assertThrows(IOException.class, () -> Sam2Weights.load(f, c, prefix, ScalarType.Float, Devices.cpu()));
    }

    @Test
    void sa2vaCheckpointLoadsAndSkipsVideoAndLlmKeys() throws IOException {
        Sam2Weights w = Sam2Weights.load(Sam2Fixtures.weights(), Sam2Config.tinyRandom(), P, ScalarType.Float,
                Devices.cpu());
        assertEquals(Sam2Weights.expectedShapes(Sam2Config.tinyRandom()).size(), w.all().size());
        // the memory / object-pointer keys of the fixture plus the mask-prompt downscaler; text_hidden_fcs is outside
        assertTrue(w.ignoredKeys().contains(P + "memory_attention.layers.0.self_attn.q_proj.weight"), w.ignoredKeys().toString());
        assertTrue(w.ignoredKeys().contains(P + "sam_prompt_encoder.mask_downscaling.0.weight"));
        assertTrue(w.ignoredKeys().stream().noneMatch(k -> k.startsWith("text_hidden_fcs")));
        // HF's count (summary.json: 190209) leaves out the Fourier matrix (a buffer, 2 x 16) and includes the mask
        // downscaler, which the image path skips
        assertEquals(190209 + 2 * 16 - maskDownscalingParams(), w.parameterCount());
    }

    /** Parameters of sam_prompt_encoder.mask_downscaling in the fixture (HF counts them, the image path skips them). */
    static long maskDownscalingParams() {
        long n = 0;
        for (var e : fixtureWeights().entrySet()) {
            if (e.getKey().contains("mask_downscaling")) {
                n += e.getValue().numel();
            }
        }
        return n;
    }

    @Test
    void originalSam2NamesGiveIdenticalOutputs() throws IOException {
        Map<String, Tensor> stripped = new LinkedHashMap<>();
        fixtureWeights().forEach((k, v) -> {
            if (k.startsWith(P)) {
                stripped.put(k.substring(P.length()), v);
            }
        });
        Path f = write("sam2.safetensors", stripped);
        Sam2Model a = Sam2Model.load(Sam2Fixtures.weights(), Sam2Config.tinyRandom(), P, ScalarType.Float, Devices.cpu());
        Sam2Model b = Sam2Model.load(f, Sam2Config.tinyRandom(), Sam2Weights.ORIGINAL_PREFIX, ScalarType.Float,
                Devices.cpu());
        Map<String, Tensor> in = Sam2Fixtures.inputs();
        Sam2Prompt p = Sam2Prompt.language(in.get("lang_embed"));
        Tensor ma = a.segment(in.get("pixel_values"), p).masks(), mb = b.segment(in.get("pixel_values"), p).masks();
        assertEquals(0.0, Torch.relError(mb, ma));
    }

    @Test
    void missingTensorIsNamedWithItsShape() throws IOException {
        Map<String, Tensor> m = fixtureWeights();
        m.remove(P + "sam_mask_decoder.iou_token.weight");
        IOException e = loadFails(write("m.safetensors", m), Sam2Config.tinyRandom(), P);
        assertTrue(e.getMessage().contains("missing tensor '" + P + "sam_mask_decoder.iou_token.weight' (expected shape [1, 32])"),
                e.getMessage());
    }

    @Test
    void misShapedTensorIsNamedWithBothShapes() throws IOException {
        Map<String, Tensor> m = fixtureWeights();
        m.put(P + "image_encoder.trunk.blocks.3.attn.qkv.weight", Torch.zeros(ScalarType.Float, Devices.cpu(), 96, 17));
        IOException e = loadFails(write("m.safetensors", m), Sam2Config.tinyRandom(), P);
        assertTrue(e.getMessage().contains("tensor '" + P + "image_encoder.trunk.blocks.3.attn.qkv.weight' has shape "
                + "[96, 17], expected [96, 16]"), e.getMessage());
    }

    @Test
    void unexpectedTensorIsNamed() throws IOException {
        Map<String, Tensor> m = fixtureWeights();
        m.put(P + "image_encoder.trunk.blocks.8.norm1.weight", Torch.zeros(ScalarType.Float, Devices.cpu(), 64));
        m.put(P + "some_new_module.weight", Torch.zeros(ScalarType.Float, Devices.cpu(), 3));
        IOException e = loadFails(write("m.safetensors", m), Sam2Config.tinyRandom(), P);
        assertTrue(e.getMessage().contains("unexpected tensor '" + P + "image_encoder.trunk.blocks.8.norm1.weight' with "
                + "shape [64]"), e.getMessage());
        assertTrue(e.getMessage().contains(P + "some_new_module.weight"), e.getMessage());
        assertTrue(e.getMessage().contains("m.safetensors"), "names the file: " + e.getMessage());
    }

    @Test
    void wrongConfigOrPrefixFailsBeforeLoading() {
        IOException e = loadFails(Sam2Fixtures.weights(), Sam2Config.hieraTiny(), P);
        assertTrue(e.getMessage().contains("image_encoder.trunk.patch_embed.proj.weight' has shape [8, 3, 7, 7], "
                + "expected [96, 3, 7, 7]"), e.getMessage());
        IOException e2 = loadFails(Sam2Fixtures.weights(), Sam2Config.tinyRandom(), "sam2_model.");
        assertTrue(e2.getMessage().contains("no SAM2 image-path tensor under prefix 'sam2_model.' (prefix found in the "
                + "checkpoint: '" + P + "')"), e2.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Sam2Weights.load(Sam2Fixtures.weights(),
                Sam2Config.tinyRandom(), P, ScalarType.Long, Devices.cpu()));
        assertThrows(IOException.class, () -> Sam2Weights.load(dir.resolve("absent.safetensors"),
                Sam2Config.tinyRandom(), P, ScalarType.Float, Devices.cpu()));
    }

    @Test
    void largeConfigHasSam2LargeParameterCounts() {
        // sa2va-reference.md §1.6 (from the published SAM2-L shapes): trunk 212.1M, neck 0.55M, mask decoder 4.22M,
        // prompt encoder ~6.5K (of which mask_downscaling, skipped here, is ~4.7K)
        Map<String, Long> n = new LinkedHashMap<>();
        Sam2Weights.expectedShapes(Sam2Config.hieraLarge()).forEach((k, s) -> {
            long c = 1;
            for (long d : s) {
                c *= d;
            }
            String part = k.startsWith("image_encoder.trunk") ? "trunk" : k.startsWith("image_encoder.neck") ? "neck"
                    : k.startsWith("sam_mask_decoder") ? "decoder" : k.startsWith("sam_prompt_encoder") ? "prompt" : "other";
            n.merge(part, c, Long::sum);
        });
        assertEquals(212.1e6, n.get("trunk"), 0.05e6, n.toString());
        assertEquals(0.55e6, n.get("neck"), 0.005e6, n.toString());
        assertEquals(4.22e6, n.get("decoder"), 0.005e6, n.toString());
        assertEquals(256 * 6 + 2 * 128, (long) n.get("prompt"), n.toString());
        assertEquals(256, (long) n.get("other"), "no_mem_embed");
    }

    @Test
    void presetsFollowTheSam2Configs() {
        Sam2Config l = Sam2Config.hieraLarge();
        // q-pool at the first block of stages 1..3, windows lag one block at a stage change (sa2va-reference §1.4)
        int[] window = new int[l.totalBlocks()];
        for (int i = 0; i < window.length; i++) {
            window[i] = l.blockWindow(i);
            assertEquals(i == 2 || i == 8 || i == 44, l.blockQueryPool(i), "q-pool at block " + i);
        }
        for (int i = 0; i < window.length; i++) {
            int want = i <= 2 ? 8 : i <= 8 ? 4 : i <= 44 ? 16 : 8;
            if (i == 23 || i == 33 || i == 43) {
                want = 0;
            }
            assertEquals(want, window[i], "window of block " + i);
        }
        assertEquals(64, l.embeddingSize());
        assertEquals(256, l.lowResMaskSize());
        assertEquals(Sam2Config.hieraLarge(), Sam2Config.preset("hiera-large"));
        assertEquals(Sam2Config.hieraBasePlus(), Sam2Config.preset("hiera_base_plus"));
        assertThrows(IllegalArgumentException.class, () -> Sam2Config.preset("huge"));
        assertThrows(IllegalArgumentException.class, () -> new Sam2Config(1000, new int[] {8, 16, 32, 64},
                new int[] {1, 2, 4, 8}, new int[] {1, 2, 3, 2}, new int[] {8, 4, 6, 2}, new int[] {5}, new int[] {4, 4},
                32, 4, 64, 32));
        assertThrows(IllegalArgumentException.class, () -> new Sam2Config(128, new int[] {8, 16, 32, 64},
                new int[] {3, 2, 4, 8}, new int[] {1, 2, 3, 2}, new int[] {8, 4, 6, 2}, new int[] {5}, new int[] {4, 4},
                32, 4, 64, 32));
    }
}
