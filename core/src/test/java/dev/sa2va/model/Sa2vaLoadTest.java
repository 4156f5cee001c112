package dev.sa2va.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loading a Sa2VA folder: every problem is an IOException naming the file or the key. */
class Sa2vaLoadTest {
    @TempDir
    Path tmp;

    static Sa2VA.Options cpu() {
        return Sa2VA.Options.defaults().withDevice("cpu");
    }

    @Test
    void missingSam2TensorIsNamed() throws Exception {
        Path dir = TinySa2va.write(tmp.resolve("m"), 1, k -> !k.equals("sam_mask_decoder.iou_token.weight"), Map.of());
        IOException e = assertThrows(IOException.class, () -> Sa2VA.load(dir, cpu()));
        assertTrue(e.getMessage().contains("grounding_encoder.sam2_model.sam_mask_decoder.iou_token.weight"), e.getMessage());
    }

    @Test
    void missingMllmTensorIsNamed() throws Exception {
        Path dir = TinySa2va.write(tmp.resolve("m"), 1);
        Path index = dir.resolve("model.safetensors.index.json");
        JsonObject o = JsonParser.parseString(Files.readString(index)).getAsJsonObject();
        o.getAsJsonObject("weight_map").remove("text_hidden_fcs.2.weight");
        Files.writeString(index, o.toString());
        IOException e = assertThrows(IOException.class, () -> Sa2VA.load(dir, cpu()));
        assertTrue(e.getMessage().contains("text_hidden_fcs.2.weight"), e.getMessage());
    }

    @Test
    void foreignTensorIsNamed() throws Exception {
        try (PointerScope s = new PointerScope()) {
            Path dir = TinySa2va.write(tmp.resolve("m"), 1, k -> true,
                    Map.of("visual.blocks.0.weight", Torch.zeros(ScalarType.Float, Devices.cpu(), 2, 2)));
            IOException e = assertThrows(IOException.class, () -> Sa2VA.load(dir, cpu()));
            assertTrue(e.getMessage().contains("visual.blocks.0.weight"), e.getMessage());
        }
    }

    @Test
    void missingTokenizerIsNamedAndAStandInCanBeGiven() throws Exception {
        Path dir = TinySa2va.write(tmp.resolve("m"), 1);
        Files.delete(dir.resolve("tokenizer.json"));
        IOException e = assertThrows(IOException.class, () -> Sa2VA.load(dir, cpu()));
        assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
        // the tiny fixture's config lists its token ids for tokenizer-less runs
        try (Sa2VA m = Sa2VA.load(dir, cpu().withTokenizer(ByteTokenizer.forModel(dir)))) {
            assertEquals(3014, m.segTokenId());
        }
    }

    @Test
    void badSam2ConfigIsNamed() throws Exception {
        Path dir = TinySa2va.write(tmp.resolve("m"), 1);
        Path cfg = dir.resolve("config.json");
        JsonObject o = JsonParser.parseString(Files.readString(cfg)).getAsJsonObject();
        o.addProperty(Sa2vaArchitecture.SAM2_CONFIG_KEY, "hiera-huge");
        Files.writeString(cfg, o.toString());
        IOException e = assertThrows(IOException.class, () -> Sa2VA.load(dir, cpu()));
        assertTrue(e.getMessage().contains("sam2_config") && e.getMessage().contains("hiera-huge"), e.getMessage());
        // a real-size SAM2 (the default when the key is absent) does not match the tiny weights: shapes are named
        o.remove(Sa2vaArchitecture.SAM2_CONFIG_KEY);
        Files.writeString(cfg, o.toString());
        e = assertThrows(IOException.class, () -> Sa2VA.load(dir, cpu()));
        assertTrue(e.getMessage().contains("image_encoder.trunk.patch_embed.proj.weight"), e.getMessage());
    }

    @Test
    void sam2PromptWidthMustMatchTextHiddenFcs() throws Exception {
        Path dir = TinySa2va.write(tmp.resolve("m"), 1, dev.sa2va.sam2.Sam2Config.tinyRandom(), k -> true, Map.of());
        IOException e = assertThrows(IOException.class, () -> Sa2VA.load(dir, cpu()));
        assertTrue(e.getMessage().contains("256") && e.getMessage().contains("32"), e.getMessage());
    }

    @Test
    void missingFolderOrConfig() throws Exception {
        assertThrows(IOException.class, () -> Sa2VA.load(tmp.resolve("nope"), cpu()));
        Path dir = TinySa2va.write(tmp.resolve("m"), 1);
        Files.delete(dir.resolve("config.json"));
        IOException e = assertThrows(IOException.class, () -> Sa2VA.load(dir, cpu()));
        assertTrue(e.getMessage().contains("config"), e.getMessage());
    }

    @Test
    void byteTokenizerRoundTripsAndMatchesAddedTokensLongestFirst() {
        ByteTokenizer t = new ByteTokenizer(Map.of("<img>", 300L, "<img>x", 301L, "[SEG]", 302L));
        long[] ids = t.encode("a<img>x<img>[SEG]é");
        assertEquals("[97, 301, 300, 302, 195, 169]", java.util.Arrays.toString(ids));
        assertEquals("a<img>x<img>[SEG]é", t.decode(ids));
        assertEquals("<|999|>", t.decode(new long[] {999}));
        assertThrows(IllegalArgumentException.class, () -> new ByteTokenizer(Map.of("x", 12L)));
        assertThrows(IllegalArgumentException.class, () -> t.tokenId("<IMG_CONTEXT>"));
        assertEquals(151674L, ByteTokenizer.qwen().tokenId("[SEG]"));
    }
}
