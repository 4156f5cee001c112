package dev.sa2va.mllm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import dev.sa2va.core.Devices;
import dev.sa2va.testing.Gpu;
import dev.sa2va.testing.Tf32;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The MLLM on CUDA against HF transformers: the tiny fixture (always), and the Sa2VA-1B dimensions when the
 * folder written on the GPU host by {@code mllm_reference.py --config sa2va-1b} is given (environment variable
 * {@code SA2VA_MLLM_1B_DIR} or system property {@code sa2va.mllm.1b.dir}; the weights are 3.3 GB and never leave
 * the host). Criteria: fp32 every stage ≤ 1e-4, 32 identical greedy tokens (multimodal and text prompts); bf16
 * ≤ max(2e-2, 1.5 × HF's own bf16 error) against HF fp32. With {@code SA2VA_MLLM_REPORT} set, all numbers
 * are also written there as JSON (before any assertion, so a failing run still reports).
 */
@Tag("gpu")
class MllmGpuTest {
    static final int STEPS = 32;

    @BeforeEach
    void gpu() {
        Gpu.require();
        // the HF reference ran with TF32 off; libtorch enables it for cuDNN convolutions by default
        Tf32.offForThisRun();
    }

    @Test
    void tinyFixtureOnCuda() throws Exception {
        JsonObject report = check(Fixtures.dir("tiny"), "tiny");
        assertAll(report);
    }

    @Test
    void sa2va1bDimensionsOnCuda() throws Exception {
        String d = System.getProperty("sa2va.mllm.1b.dir", System.getenv("SA2VA_MLLM_1B_DIR"));
        assumeTrue(d != null && !d.isBlank(), "SA2VA_MLLM_1B_DIR not set: the Sa2VA-1B reference folder lives only on "
                + "the GPU host (core/verification/mllm/run_host.sh)");
        JsonObject report = check(Path.of(d), "sa2va-1b");
        String out = System.getenv("SA2VA_MLLM_REPORT");
        if (out != null && !out.isBlank()) {
            Files.writeString(Path.of(out), new GsonBuilder().setPrettyPrinting().serializeSpecialFloatingPointValues()
                    .create().toJson(report));
        }
        assertAll(report);
    }

    /** Runs every comparison and returns them with their verdicts. */
    static JsonObject check(Path dir, String name) throws Exception {
        return check(dir, name, Devices.cuda(0));
    }

    static JsonObject check(Path dir, String name, Device cuda) throws Exception {
        JsonObject r = new JsonObject();
        r.addProperty("config", name);
        r.addProperty("dir", dir.toString());
        List<String> failures = new ArrayList<>();
        try (MllmReferenceCheck ref = new MllmReferenceCheck(dir)) {
            long t0 = System.nanoTime();
            try (Sa2vaMllm m = MllmWeights.load(dir.resolve("model"), ScalarType.Float, cuda)) {
                r.addProperty("load_fp32_s", (System.nanoTime() - t0) / 1e9);
                long t1 = System.nanoTime();
                Map<String, Double> e32 = ref.stages(m, true, ref.ref32).get(0);
                r.addProperty("stages_fp32_s", (System.nanoTime() - t1) / 1e9);
                JsonObject fp32 = new JsonObject();
                for (String k : ref.ref32.keys()) {
                    Double e = e32.get(k);
                    fp32.addProperty(k, e == null ? Double.NaN : e);
                    if (e == null || !(e <= 1e-4)) {
                        failures.add("fp32 " + k + " rel. error " + e + " > 1e-4");
                    }
                }
                r.add("fp32_rel_err_vs_hf", fp32);

                long t2 = System.nanoTime();
                Map<String, Generator.Result> g = ref.greedy(m, STEPS);
                r.addProperty("greedy_fp32_s", (System.nanoTime() - t2) / 1e9);
                JsonObject greedy = new JsonObject();
                for (String which : new String[] {"mm", "text"}) {
                    long[] hf = ref.longs("greedy", which + "_greedy_fp32");
                    double[] hfMargins = ref.doubles("greedy", which + "_greedy_margins_fp32");
                    Generator.Result got = g.get(which);
                    int first = MllmReferenceCheck.firstMismatch(got.tokens(), hf);
                    JsonObject o = new JsonObject();
                    o.add("java", array(got.tokens()));
                    o.add("hf", array(hf));
                    o.addProperty("first_mismatch", first);
                    if (first >= 0) {
                        o.addProperty("hf_margin_at_mismatch", first < hfMargins.length ? hfMargins[first] : Double.NaN);
                        failures.add("fp32 greedy " + which + " differs from step " + first + " (HF margin there "
                                + (first < hfMargins.length ? hfMargins[first] : Double.NaN) + ")");
                    }
                    double maxMarginDiff = 0;
                    for (int i = 0; i < Math.min(hfMargins.length, got.margins().length); i++) {
                        maxMarginDiff = Math.max(maxMarginDiff, Math.abs(hfMargins[i] - got.margins()[i]));
                    }
                    o.addProperty("max_abs_margin_diff", maxMarginDiff);
                    greedy.add(which, o);
                }
                r.add("greedy_fp32", greedy);
            }
            long t3 = System.nanoTime();
            try (Sa2vaMllm m = MllmWeights.load(dir.resolve("model"), ScalarType.BFloat16, cuda)) {
                r.addProperty("load_bf16_s", (System.nanoTime() - t3) / 1e9);
                List<Map<String, Double>> e16 = ref.stages(m, false, ref.ref32, ref.ref16);
                JsonObject bf16 = new JsonObject();
                for (String k : ref.ref16.keys()) {
                    Double vs32 = e16.get(0).get(k), vs16 = e16.get(1).get(k);
                    double hfOwn = ref.hfBf16Error(k.equals("llm.logits_rows") ? "llm.logits" : k);
                    double bound = Math.max(2e-2, 1.5 * hfOwn);
                    JsonObject o = new JsonObject();
                    o.addProperty("java_bf16_vs_hf_fp32", vs32 == null ? Double.NaN : vs32);
                    o.addProperty("java_bf16_vs_hf_bf16", vs16 == null ? Double.NaN : vs16);
                    o.addProperty("hf_bf16_vs_hf_fp32", hfOwn);
                    o.addProperty("bound", bound);
                    bf16.add(k, o);
                    if (vs32 == null || !(vs32 <= bound)) {
                        failures.add("bf16 " + k + " rel. error " + vs32 + " > " + bound);
                    }
                }
                r.add("bf16", bf16);
            }
        }
        JsonArray f = new JsonArray();
        failures.forEach(f::add);
        r.add("failures", f);
        r.addProperty("pass", failures.isEmpty());
        System.out.println("MLLM " + name + " on " + Devices.describe(cuda) + " vs HF: " + new GsonBuilder().serializeSpecialFloatingPointValues()
                .create().toJson(r).replaceAll("\"(java|hf)\":\\[[^\\]]*\\],?", ""));
        return r;
    }

    static JsonArray array(long[] a) {
        JsonArray j = new JsonArray();
        for (long v : a) {
            j.add(v);
        }
        return j;
    }

    static void assertAll(JsonObject report) {
        assertTrue(report.get("pass").getAsBoolean(), "failures: " + report.get("failures"));
    }
}
