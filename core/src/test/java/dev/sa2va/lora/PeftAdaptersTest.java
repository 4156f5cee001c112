package dev.sa2va.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.io.SafeTensors;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Adapters in Hugging Face PEFT's on-disk format: keys, config fields, PEFT's pattern rules, and errors. */
class PeftAdaptersTest {
    static final String Q = "model.layers.0.self_attn.q_proj";
    static final String V = "model.layers.0.self_attn.v_proj";
    static final String DOWN = "model.layers.1.mlp.down_proj";

    @TempDir
    Path tmp;
    PointerScope scope;

    @BeforeEach
    void open() {
        scope = new PointerScope();
        Torch.seed(5);
    }

    @AfterEach
    void close() {
        scope.close();
    }

    static LoraLinear layer(long dOut, long dIn, int r, double alpha) {
        Tensor w = Torch.randn(ScalarType.Float, Devices.cpu(), dOut, dIn);
        return LoraLinear.builder(w).weights(Torch.randn(ScalarType.Float, Devices.cpu(), r, dIn),
                Torch.randn(ScalarType.Float, Devices.cpu(), dOut, r)).alpha(alpha).dropout(0.05).build();
    }

    Map<String, LoraLinear> modules() {
        Map<String, LoraLinear> m = new LinkedHashMap<>();
        m.put(Q, layer(16, 16, 8, 16));
        m.put(V, layer(8, 16, 8, 16));
        m.put(DOWN, layer(16, 24, 4, 32));
        return m;
    }

    @Test
    void savedFilesHavePeftKeysAndConfig() throws IOException {
        Map<String, LoraLinear> m = modules();
        PeftAdapters.save(tmp, m, "ByteDance/Sa2VA-1B");
        try (SafeTensors st = SafeTensors.open(tmp.resolve("adapter_model.safetensors"))) {
            Set<String> want = Set.of("base_model.model." + Q + ".lora_A.weight", "base_model.model." + Q + ".lora_B.weight",
                    "base_model.model." + V + ".lora_A.weight", "base_model.model." + V + ".lora_B.weight",
                    "base_model.model." + DOWN + ".lora_A.weight", "base_model.model." + DOWN + ".lora_B.weight");
            assertEquals(want, st.keys());
            assertEquals("pt", st.metadata().get("format"));
            SafeTensors.Entry a = st.entry("base_model.model." + DOWN + ".lora_A.weight");
            assertEquals("F32", a.dtype());
            assertEquals(4, a.shape()[0]);
            assertEquals(24, a.shape()[1]);
            assertTrue(torch.equal(st.get("base_model.model." + DOWN + ".lora_B.weight"), m.get(DOWN).loraB()));
        }
        JsonObject cfg = JsonParser.parseString(Files.readString(tmp.resolve("adapter_config.json"))).getAsJsonObject();
        assertEquals("LORA", cfg.get("peft_type").getAsString());
        assertEquals(8, cfg.get("r").getAsInt());
        assertEquals(16, cfg.get("lora_alpha").getAsInt());
        assertEquals(0.05, cfg.get("lora_dropout").getAsDouble(), 0);
        assertEquals("none", cfg.get("bias").getAsString());
        assertFalse(cfg.get("use_rslora").getAsBoolean());
        assertFalse(cfg.get("use_dora").getAsBoolean());
        assertEquals("ByteDance/Sa2VA-1B", cfg.get("base_model_name_or_path").getAsString());
        assertEquals(4, cfg.getAsJsonObject("rank_pattern").get("model\\.layers\\.1\\.mlp\\.down_proj").getAsInt());
        assertEquals(32, cfg.getAsJsonObject("alpha_pattern").get("model\\.layers\\.1\\.mlp\\.down_proj").getAsInt());
        assertEquals(1, cfg.getAsJsonObject("rank_pattern").size());
        assertEquals(3, cfg.getAsJsonArray("target_modules").size());
    }

    @Test
    void roundTripRestoresWeightsAndScalings() throws IOException {
        Map<String, LoraLinear> m = modules();
        PeftAdapters.save(tmp, m, null);
        Map<String, PeftAdapters.Adapter> read = PeftAdapters.read(tmp, null);
        assertEquals(m.keySet(), read.keySet());
        for (String k : m.keySet()) {
            PeftAdapters.Adapter a = read.get(k);
            assertEquals(m.get(k).rank(), a.rank());
            assertEquals(m.get(k).alpha(), a.alpha());
            assertEquals(m.get(k).scaling(), a.scaling(), 0);
            assertTrue(torch.equal(a.loraA(), m.get(k).loraA()));
            assertTrue(torch.equal(a.loraB(), m.get(k).loraB()));
        }
        // into fresh layers over the same base weights: identical outputs
        Map<String, LoraLinear> fresh = new TreeMap<>();
        for (String k : m.keySet()) {
            LoraLinear o = m.get(k);
            fresh.put(k, LoraLinear.builder(o.weight()).rank(o.rank()).alpha(o.alpha()).build());
        }
        PeftAdapters.loadInto(tmp, fresh);
        for (String k : m.keySet()) {
            Tensor x = Torch.randn(ScalarType.Float, Devices.cpu(), 3, m.get(k).inFeatures());
            assertTrue(torch.equal(fresh.get(k).forward(x), m.get(k).forward(x)), k);
        }
    }

    /** A directory laid out as PEFT writes it, with PEFT-style pattern keys (regex fragments matching suffixes). */
    Path peftStyleDir(int downRank, String extraConfig) throws IOException {
        Map<String, Tensor> t = new TreeMap<>();
        String[] mods = {Q, DOWN, "model.layers.2.mlp.down_proj", "model.layers.2.mlp.down_proj_x"};
        int[] ranks = {8, downRank, downRank, 8};
        for (int i = 0; i < mods.length; i++) {
            t.put("base_model.model." + mods[i] + ".lora_A.weight", Torch.randn(ScalarType.BFloat16, Devices.cpu(), ranks[i], 16));
            t.put("base_model.model." + mods[i] + ".lora_B.weight", Torch.randn(ScalarType.BFloat16, Devices.cpu(), 16, ranks[i]));
        }
        SafeTensors.save(tmp.resolve("adapter_model.safetensors"), t, Map.of("format", "pt"));
        String cfg = "{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16, \"lora_dropout\": 0.05, \"bias\": \"none\","
                + " \"rank_pattern\": {\"down_proj\": 4}, \"alpha_pattern\": {\"layers\\\\.2\\\\..*down_proj\": 2},"
                + " \"use_rslora\": true, \"target_modules\": [\"q_proj\", \"down_proj\"]" + extraConfig + "}";
        Files.writeString(tmp.resolve("adapter_config.json"), cfg, StandardCharsets.UTF_8);
        return tmp;
    }

    @Test
    void peftPatternsResolveAsInPeft() throws IOException {
        Map<String, PeftAdapters.Adapter> read = PeftAdapters.read(peftStyleDir(4, ""), null);
        assertEquals(8, read.get(Q).rank());
        assertEquals(16, read.get(Q).alpha());
        assertEquals(4, read.get(DOWN).rank());               // "down_proj" matches ...mlp.down_proj
        assertEquals(16, read.get(DOWN).alpha());
        assertEquals(2, read.get("model.layers.2.mlp.down_proj").alpha());  // regex key, first match wins
        assertEquals(8, read.get("model.layers.2.mlp.down_proj_x").rank()); // no match: (.*\.)?(down_proj)$
        assertTrue(read.get(Q).rsLora());
        assertEquals(16 / Math.sqrt(8), read.get(Q).scaling(), 1e-12);
        assertEquals(ScalarType.BFloat16, Torch.dtype(read.get(Q).loraA()));
    }

    @Test
    void malformedAdaptersAreIoErrorsNamingTheCulprit() throws IOException {
        IOException e = assertThrows(IOException.class, () -> PeftAdapters.read(peftStyleDir(5, ""), null));
        assertTrue(e.getMessage().contains("base_model.model." + DOWN + ".lora_A.weight' has rank 5 but adapter_config.json gives 4"),
                e.getMessage());
        e = assertThrows(IOException.class, () -> PeftAdapters.read(peftStyleDir(4, ", \"use_dora\": true"), null));
        assertTrue(e.getMessage().endsWith("use_dora is true; DoRA adapters are not supported"), e.getMessage());
        e = assertThrows(IOException.class, () -> PeftAdapters.read(peftStyleDir(4, ", \"bias\": \"all\""), null));
        assertTrue(e.getMessage().contains("bias is 'all'"), e.getMessage());
        Files.writeString(tmp.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": 8,", StandardCharsets.UTF_8);
        e = assertThrows(IOException.class, () -> PeftAdapters.read(tmp, null));
        assertTrue(e.getMessage().startsWith(tmp.resolve("adapter_config.json") + ": invalid JSON"), e.getMessage());
        Files.writeString(tmp.resolve("adapter_config.json"), "{\"peft_type\": \"IA3\"}", StandardCharsets.UTF_8);
        e = assertThrows(IOException.class, () -> PeftAdapters.read(tmp, null));
        assertTrue(e.getMessage().endsWith("peft_type is IA3, only LORA adapters are supported"), e.getMessage());

        // a lora_A without its lora_B
        Map<String, Tensor> t = Map.of("base_model.model." + Q + ".lora_A.weight", Torch.zeros(ScalarType.Float, Devices.cpu(), 2, 4));
        SafeTensors.save(tmp.resolve("adapter_model.safetensors"), t, null);
        Files.writeString(tmp.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 2}",
                StandardCharsets.UTF_8);
        e = assertThrows(IOException.class, () -> PeftAdapters.read(tmp, null));
        assertTrue(e.getMessage().contains("'base_model.model." + Q + ".lora_B.weight' missing"), e.getMessage());

        Files.delete(tmp.resolve("adapter_config.json"));
        e = assertThrows(IOException.class, () -> PeftAdapters.read(tmp, null));
        assertTrue(e.getMessage().startsWith(tmp.resolve("adapter_config.json") + ": not found"), e.getMessage());
    }

    @Test
    void loadIntoChecksEveryRequestedModule() throws IOException {
        Map<String, LoraLinear> m = modules();
        PeftAdapters.save(tmp, Map.of(Q, m.get(Q)), null);
        IOException e = assertThrows(IOException.class, () -> PeftAdapters.loadInto(tmp, Map.of(V, m.get(V))));
        assertTrue(e.getMessage().contains("no adapter for module '" + V + "' (key 'base_model.model." + V + ".lora_A.weight')"),
                e.getMessage());
        LoraLinear otherAlpha = LoraLinear.builder(m.get(Q).weight()).rank(8).alpha(4).build();
        e = assertThrows(IOException.class, () -> PeftAdapters.loadInto(tmp, Map.of(Q, otherAlpha)));
        assertTrue(e.getMessage().contains("module '" + Q + "' is stored with r=8 alpha=16.0"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> PeftAdapters.save(tmp, Map.of(), null));
    }
}
