package dev.sa2va.mllm;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.io.SafeTensors;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BiConsumer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Runs the Java MLLM on the inputs of a phase-1 reference folder (core/verification/mllm/mllm_reference.py:
 * {@code model/}, {@code inputs.safetensors}, {@code reference_fp32/bf16.safetensors}, {@code reference.json})
 * and measures every stage against HF transformers' outputs: relative error ‖a − b‖/‖b‖ in float64, and the
 * greedy tokens. Shared by the CPU test (tiny fixture) and the GPU test (Sa2VA-1B dimensions).
 */
final class MllmReferenceCheck implements AutoCloseable {
    final Path dir;
    final JsonObject meta;
    final SafeTensors inputs;
    final SafeTensors ref32;
    final SafeTensors ref16;

    MllmReferenceCheck(Path dir) throws IOException {
        this.dir = dir;
        this.meta = JsonParser.parseString(Files.readString(dir.resolve("reference.json"))).getAsJsonObject();
        this.inputs = SafeTensors.open(dir.resolve("inputs.safetensors"));
        this.ref32 = SafeTensors.open(dir.resolve("reference_fp32.safetensors"));
        this.ref16 = SafeTensors.open(dir.resolve("reference_bf16.safetensors"));
    }

    long tokenId(String token) {
        return meta.getAsJsonObject("token_ids").get(token).getAsLong();
    }

    long[] longs(String... path) {
        JsonElement e = meta;
        for (String p : path) {
            e = e.getAsJsonObject().get(p);
        }
        JsonArray a = e.getAsJsonArray();
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).getAsLong();
        }
        return out;
    }

    double[] doubles(String... path) {
        JsonElement e = meta;
        for (String p : path) {
            e = e.getAsJsonObject().get(p);
        }
        JsonArray a = e.getAsJsonArray();
        double[] out = new double[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).getAsDouble();
        }
        return out;
    }

    /** HF's own bf16-vs-fp32 error for a tensor (the baseline of the bf16 criterion). */
    double hfBf16Error(String key) {
        return meta.getAsJsonObject("bf16_vs_fp32_rel_err_hf").get(key).getAsDouble();
    }

    /** ‖a − ref‖/‖ref‖ in float64 on a's device; NaN when the shapes differ. */
    static double relErr(Tensor a, Tensor ref) {
        if (!Arrays.equals(TensorCheck.shapeOf(a), TensorCheck.shapeOf(ref))) {
            return Double.NaN;
        }
        try (Scope s = new Scope()) {
            Tensor x = a.to(a.device(), ScalarType.Double), r = ref.to(a.device(), ScalarType.Double);
            double num = x.sub(r).norm().item().toDouble(), den = r.norm().item().toDouble();
            return den == 0 ? num : num / den;
        }
    }

    /**
     * Every stage of the model against each of {@code refs}: one map of errors per reference, by key. With
     * {@code all} false only the keys of the bf16 reference are computed (vision output, projector, final norm,
     * logits, [SEG] embeddings), which is what the bf16 criteria need.
     */
    List<Map<String, Double>> stages(Sa2vaMllm m, boolean all, SafeTensors... refs) throws IOException {
        List<Map<String, Double>> errs = new ArrayList<>();
        for (int i = 0; i < refs.length; i++) {
            errs.add(new LinkedHashMap<>());
        }
        Device dev = m.device();
        Set<String> wanted = all ? null : ref16.keys();
        BiConsumer<String, Tensor> cmp = (name, t) -> {
            if (wanted != null && !wanted.contains(name)) {
                return;
            }
            for (int i = 0; i < refs.length; i++) {
                if (refs[i].contains(name)) {
                    try (Scope s = new Scope()) {
                        errs.get(i).put(name, relErr(t, refs[i].get(name, null, dev)));
                    } catch (IOException e) {
                        throw new IllegalStateException(e);
                    }
                }
            }
        };
        Probe probe = cmp::accept;
        long ctx = tokenId("<IMG_CONTEXT>");
        try (Scope s = new Scope()) {
            Tensor features = m.imageFeatures(inputs.get("pixel_values"), probe);
            if (all) {
                cmp.accept("vision_interp.last_hidden_state",
                        m.vision().forward(inputs.get("vision_interp.pixel_values").to(dev, m.dtype()), Probe.NONE));
            }
            Tensor embeds = m.inputsEmbeds(inputs.get("input_ids"), features, ctx);
            cmp.accept("llm.inputs_embeds", embeds);
            Tensor hidden = m.llm().forward(embeds, null, probe);
            if (ref32.contains("llm.logits")) {
                cmp.accept("llm.logits", m.llm().logits(hidden));
            } else {
                long[] rows = longs("greedy", "llm_logits_rows");
                Tensor idx = Torch.fromLongs(rows, rows.length).to(dev, ScalarType.Long);
                cmp.accept("llm.logits_rows", m.llm().logits(hidden.select(0, 0).index_select(0, idx)));
            }

            // [SEG]: the prompt followed by an answer with two [SEG] tokens, teacher-forced
            Tensor segIds = inputs.get("seg_input_ids");
            Tensor segHidden = m.llm().forward(m.inputsEmbeds(segIds, features, ctx), null, Probe.NONE);
            Tensor segRows = SegTokens.select(segHidden, segIds, tokenId("[SEG]"));
            cmp.accept("seg.hidden", segRows);
            cmp.accept("seg.logits_last", m.llm().logits(segHidden.narrow(1, segHidden.size(1) - 1, 1).select(0, 0)));
            cmp.accept("seg.embeddings", m.seg().embed(segRows));

            if (all) {
                Tensor textIds = inputs.get("text_input_ids").unsqueeze(0).to(dev, ScalarType.Long);
                Tensor th = m.llm().forward(m.llm().embed(textIds), null, Probe.NONE);
                cmp.accept("text.final_norm", th);
                long r = ref32.entry("text.logits").shape()[1];   // 1B keeps only the last rows
                cmp.accept("text.logits", m.llm().logits(th.narrow(1, th.size(1) - r, r)));
            }
        }
        return errs;
    }

    /** Greedy tokens from the multimodal prompt ("mm") and the text-only prompt ("text"). */
    Map<String, Generator.Result> greedy(Sa2vaMllm m, int steps) throws IOException {
        Map<String, Generator.Result> out = new LinkedHashMap<>();
        try (Scope s = new Scope()) {
            Tensor features = m.imageFeatures(inputs.get("pixel_values"), Probe.NONE);
            Tensor embeds = m.inputsEmbeds(inputs.get("input_ids"), features, tokenId("<IMG_CONTEXT>"));
            out.put("mm", Generator.greedy(m.llm(), embeds, Generator.Options.tokens(steps), null));
            Tensor textIds = inputs.get("text_input_ids").unsqueeze(0).to(m.device(), ScalarType.Long);
            out.put("text", Generator.greedy(m.llm(), m.llm().embed(textIds), Generator.Options.tokens(steps), null));
        }
        return out;
    }

    /** First step where the tokens differ, or −1. */
    static int firstMismatch(long[] got, long[] want) {
        for (int i = 0; i < Math.max(got.length, want.length); i++) {
            if (i >= got.length || i >= want.length || got[i] != want[i]) {
                return i;
            }
        }
        return -1;
    }

    @Override
    public void close() throws IOException {
        inputs.close();
        ref32.close();
        ref16.close();
    }
}
