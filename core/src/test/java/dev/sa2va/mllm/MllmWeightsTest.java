package dev.sa2va.mllm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.io.Checkpoint;
import dev.sa2va.io.SafeTensors;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Loading: a good checkpoint in both dtypes, and every kind of bad one — missing, mis-shaped or unexpected
 * tensor, truncated shard, corrupt header, unsupported config — fails with an IOException naming file and key.
 * The bad checkpoints are edited copies of the tiny fixture.
 */
class MllmWeightsTest {
    static final Path TINY = Fixtures.dir("tiny").resolve("model");
    static Map<String, Tensor> tensors;

    @BeforeAll
    static void read() throws IOException {
        tensors = new TreeMap<>();
        try (Checkpoint ck = Checkpoint.open(TINY)) {
            for (String k : ck.keys()) {
                tensors.put(k, ck.load(k, null, null, null));
            }
        }
    }

    /** A single-file copy of the tiny model with {@code edit} applied to its tensors. */
    static Path copy(Path tmp, Consumer<Map<String, Tensor>> edit) throws IOException {
        Map<String, Tensor> t = new TreeMap<>(tensors);
        edit.accept(t);
        Files.copy(TINY.resolve("config.json"), tmp.resolve("config.json"));
        SafeTensors.save(tmp.resolve("model.safetensors"), t, Map.of("format", "pt"));
        return tmp;
    }

    static IOException loadFails(Path dir) {
        return assertThrows(IOException.class, () -> MllmWeights.load(dir, ScalarType.Float, Devices.cpu()));
    }

    @Test
    void loadsShardedMixedStorageInBothDtypes() throws IOException {
        for (ScalarType st : new ScalarType[] {ScalarType.Float, ScalarType.BFloat16}) {
            try (Sa2vaMllm m = MllmWeights.load(TINY, st, Devices.cpu())) {
                assertEquals(st, m.dtype());
                assertEquals(st, m.llm().dtype());
                assertEquals(tensors.get("language_model.model.embed_tokens.weight").size(0), m.llm().vocabSize());
                assertFalse(m.llm().tiedLmHead());
                assertEquals(9, m.config().tokensPerTile());
            }
        }
        assertThrows(IllegalArgumentException.class, () -> MllmWeights.load(TINY, ScalarType.Half, Devices.cpu()));
    }

    @Test
    void missingTensorIsNamed(@TempDir Path tmp) throws IOException {
        String key = "vision_model.encoder.layers.1.attn.qkv.bias";
        IOException e = loadFails(copy(tmp, t -> t.remove(key)));
        assertTrue(e.getMessage().contains(key), e.getMessage());
    }

    @Test
    void missingUntiedHeadIsNamed(@TempDir Path tmp) throws IOException {
        String key = "language_model.lm_head.weight";
        IOException e = loadFails(copy(tmp, t -> t.remove(key)));
        assertTrue(e.getMessage().contains(key) && e.getMessage().contains("tie_word_embeddings"), e.getMessage());
    }

    @Test
    void misShapedTensorIsNamedWithFileAndShapes(@TempDir Path tmp) throws IOException {
        String key = "mlp1.1.weight";
        IOException e = loadFails(copy(tmp, t -> t.put(key, t.get(key).narrow(1, 0, 10).contiguous())));
        assertTrue(e.getMessage().contains(key) && e.getMessage().contains("model.safetensors")
                && e.getMessage().contains("[64, 10]"), e.getMessage());
    }

    @Test
    void unexpectedTensorIsReported(@TempDir Path tmp) throws IOException {
        String key = "language_model.model.layers.0.self_attn.q_norm.weight";
        IOException e = loadFails(copy(tmp, t -> t.put(key, Torch.zeros(ScalarType.Float, Devices.cpu(), 16))));
        assertTrue(e.getMessage().contains(key), e.getMessage());
        // SAM2's weights are not the MLLM's business
        Path ok = copy(tmp.resolve("sam").toFile().mkdir() ? tmp.resolve("sam") : tmp,
                t -> t.put("grounding_encoder.sam2_model.no_mem_embed", Torch.zeros(ScalarType.Float, Devices.cpu(), 1, 1, 256)));
        MllmWeights.load(ok, ScalarType.Float, Devices.cpu()).close();
    }

    @Test
    void truncatedShardAndCorruptHeaderNameTheFile(@TempDir Path tmp) throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("trunc"));
        try (var s = Files.list(TINY)) {
            for (Path p : s.toList()) {
                Files.copy(p, dir.resolve(p.getFileName()));
            }
        }
        Path shard = dir.resolve("model-00002-of-00004.safetensors");
        byte[] b = Files.readAllBytes(shard);
        Files.write(shard, Arrays.copyOf(b, b.length - 1000));
        IOException e = loadFails(dir);
        assertTrue(e.getMessage().contains(shard.toString()), e.getMessage());

        Path shard3 = dir.resolve("model-00003-of-00004.safetensors");
        Files.write(shard, b);
        byte[] c = Files.readAllBytes(shard3);
        c[12] = '#';                                     // inside the JSON header
        Files.write(shard3, c);
        IOException e2 = loadFails(dir);
        assertTrue(e2.getMessage().contains(shard3.toString()), e2.getMessage());
    }

    static Path config(Path tmp, Consumer<JsonObject> edit) throws IOException {
        JsonObject cfg = JsonParser.parseString(Files.readString(TINY.resolve("config.json"))).getAsJsonObject();
        edit.accept(cfg);
        Files.writeString(tmp.resolve("config.json"), cfg.toString());
        return tmp.resolve("config.json");
    }

    @Test
    void unsupportedConfigsAreRejectedNamingTheKey(@TempDir Path tmp) throws IOException {
        Map<String, Consumer<JsonObject>> cases = new TreeMap<>();
        cases.put("llm_config.architectures", c -> {
            JsonArray a = new JsonArray();
            a.add("InternLM2ForCausalLM");
            c.getAsJsonObject("llm_config").add("architectures", a);
        });
        cases.put("vision_config.qk_normalization", c -> c.getAsJsonObject("vision_config").addProperty("qk_normalization", true));
        cases.put("vision_config.norm_type", c -> c.getAsJsonObject("vision_config").addProperty("norm_type", "rms_norm"));
        cases.put("llm_config.rope_scaling", c -> {
            JsonObject rs = new JsonObject();
            rs.addProperty("type", "dynamic");
            c.getAsJsonObject("llm_config").add("rope_scaling", rs);
        });
        cases.put("llm_config.hidden_size", c -> c.getAsJsonObject("llm_config").remove("hidden_size"));
        cases.put("template", c -> c.addProperty("template", "vicuna"));
        cases.put("downsample_ratio", c -> c.addProperty("downsample_ratio", 0.25));
        for (var e : cases.entrySet()) {
            Path f = config(tmp, e.getValue());
            IOException ex = assertThrows(IOException.class, () -> Sa2vaConfig.read(f), e.getKey());
            assertTrue(ex.getMessage().contains(f.toString()), ex.getMessage());
            String leaf = e.getKey().substring(e.getKey().lastIndexOf('.') + 1);
            assertTrue(ex.getMessage().contains(leaf) || ex.getMessage().contains(e.getKey())
                    || e.getKey().equals("template") && ex.getMessage().contains("vicuna"), e.getKey() + ": " + ex.getMessage());
        }
        // transformers-5 style rope_parameters are read too
        Path f = config(tmp, c -> {
            JsonObject l = c.getAsJsonObject("llm_config");
            l.remove("rope_theta");
            JsonObject rp = new JsonObject();
            rp.addProperty("rope_type", "default");
            rp.addProperty("rope_theta", 12345.0);
            l.add("rope_parameters", rp);
        });
        assertEquals(12345.0, Sa2vaConfig.read(f).llm().ropeTheta());
    }

    @Test
    void imageContextCountMustMatchTheFeatures() throws IOException {
        try (Sa2vaMllm m = MllmWeights.load(TINY, ScalarType.Float, Devices.cpu())) {
            Tensor ids = Torch.fromLongs(new long[] {1, 3007, 3007, 2}, 4);
            Tensor feats = Torch.zeros(ScalarType.Float, Devices.cpu(), 1, 3, 64);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.inputsEmbeds(ids, feats, 3007));
            assertTrue(e.getMessage().contains("2 image-context tokens") && e.getMessage().contains("3 rows"), e.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> m.imageFeatures(Torch.zeros(ScalarType.Float, Devices.cpu(), 1, 3, 70, 70), Probe.NONE));
        }
    }
}
