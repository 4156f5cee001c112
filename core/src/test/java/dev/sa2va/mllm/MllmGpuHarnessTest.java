package dev.sa2va.mllm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.io.SafeTensors;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The GPU test's harness ({@link MllmGpuTest#check}) on the CPU, with the tiny fixture rewritten into the layout
 * of the Sa2VA-1B reference (only some logits rows, the last 8 text logits), so the code that runs once on the
 * GPU host has run here before; and its verdict fails when a reference is perturbed.
 */
class MllmGpuHarnessTest {
    static Path asLargeLayout(Path tmp, long[] rows, double perturbLogits) throws Exception {
        Path src = Fixtures.dir("tiny");
        Path model = Files.createDirectory(tmp.resolve("model"));
        try (var files = Files.list(src.resolve("model"))) {
            for (Path p : files.toList()) {
                Files.copy(p, model.resolve(p.getFileName()));
            }
        }
        Files.copy(src.resolve("inputs.safetensors"), tmp.resolve("inputs.safetensors"));
        JsonObject meta = JsonParser.parseString(Files.readString(src.resolve("reference.json"))).getAsJsonObject();
        JsonArray ra = new JsonArray();
        for (long r : rows) {
            ra.add(r);
        }
        meta.getAsJsonObject("greedy").add("llm_logits_rows", ra);
        Files.writeString(tmp.resolve("reference.json"), meta.toString());
        Tensor idx = Torch.fromLongs(rows, rows.length);
        for (String f : new String[] {"reference_fp32.safetensors", "reference_bf16.safetensors"}) {
            try (SafeTensors st = SafeTensors.open(src.resolve(f))) {
                Map<String, Tensor> m = new TreeMap<>();
                for (String k : st.keys()) {
                    Tensor t = st.get(k);
                    if (k.equals("llm.logits")) {
                        m.put("llm.logits_rows", t.select(0, 0).index_select(0, idx).mul(Torch.scalar(1 + perturbLogits)));
                    } else {
                        m.put(k, k.equals("text.logits") ? t.narrow(1, t.size(1) - 8, 8).contiguous() : t);
                    }
                }
                SafeTensors.save(tmp.resolve(f), m, null);
            }
        }
        return tmp;
    }

    @Test
    void passesOnTheTinyFixtureInTheLargeLayout(@TempDir Path tmp) throws Exception {
        JsonObject r = MllmGpuTest.check(asLargeLayout(tmp, new long[] {0, 37, 45, 52}, 0), "tiny-as-1b", Devices.cpu());
        assertTrue(r.get("pass").getAsBoolean(), r.get("failures").toString());
        assertTrue(r.getAsJsonObject("fp32_rel_err_vs_hf").has("llm.logits_rows"));
        assertEquals(-1, r.getAsJsonObject("greedy_fp32").getAsJsonObject("mm").get("first_mismatch").getAsInt());
    }

    @Test
    void failsWhenTheReferenceIsOffBy1e3(@TempDir Path tmp) throws Exception {
        JsonObject r = MllmGpuTest.check(asLargeLayout(tmp, new long[] {3, 52}, 1e-3), "perturbed", Devices.cpu());
        assertFalse(r.get("pass").getAsBoolean());
        assertTrue(r.get("failures").toString().contains("fp32 llm.logits_rows"), r.get("failures").toString());
    }
}
