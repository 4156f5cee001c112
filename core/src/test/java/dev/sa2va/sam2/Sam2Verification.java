package dev.sa2va.sam2;

import dev.sa2va.testing.Tf32;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
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
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.bytedeco.pytorch.global.torch_cuda;

/**
 * The verification against a fixture directory written by core/verification/sam2/sam2_reference.py
 * ({@code {tag}_weights / _inputs / _reference [/ _reference_hf_bf16].safetensors}), as a report plus a list of
 * failures. Bounds: float32 (TF32 off) ≤ 1e-4 per stage and the same selected mask; bfloat16 ≤ max(2e-2, 1.5 ×
 * HF's own bf16 error on that key) per stage, and the same selected mask where the reference's IoU top-2 margin
 * is above 0.01 (the selected mask and its upsampled versions are judged only where the selection agrees).
 */
final class Sam2Verification {
    private Sam2Verification() {
    }

    record Result(JsonObject report, List<String> failures) {
        String json() {
            return new GsonBuilder().setPrettyPrinting().create().toJson(report);
        }
    }

    static Path file(Path dir, String tag, String suffix) {
        Path f = dir.resolve(tag + suffix);
        if (!Files.isRegularFile(f)) {
            throw new IllegalStateException("SAM2 fixture missing: " + f + " (did sam2_reference.py run?)");
        }
        return f;
    }

    /** Runs the whole comparison; never throws on a numeric mismatch (those go to {@link Result#failures()}). */
    static Result verify(Path dir, String tag, Device device, Sam2Config expected) throws IOException {
        Map<String, Tensor> in = Sam2Fixtures.readAll(file(dir, tag, "_inputs.safetensors"));
        Map<String, Tensor> ref = Sam2Fixtures.readAll(file(dir, tag, "_reference.safetensors"));
        Path bf16File = dir.resolve(tag + "_reference_hf_bf16.safetensors");
        Map<String, Tensor> hfBf16 = Files.isRegularFile(bf16File) ? Sam2Fixtures.readAll(bf16File) : Map.of();
        Sam2Config config;
        try (SafeTensors st = SafeTensors.open(file(dir, tag, "_weights.safetensors"))) {
            config = Sam2Config.fromReferenceJson(st.metadata().get("config"));
        }
        JsonObject report = new JsonObject();
        report.addProperty("config", config.toString());
        report.addProperty("is_expected_preset", config.equals(expected));
        List<String> failures = new ArrayList<>();
        if (!config.equals(expected)) {
            failures.add("fixture config is not the expected preset " + expected + ": " + config);
        }

        // preprocessing of the raw image on the GPU against the fixture's pixel_values
        Tensor px = new Sam2Preprocessor(config.imageSize()).fromRgb(in.get("image.0").to(device,
                ScalarType.Byte));
        Tensor want = in.get("pixel_values").narrow(0, 0, 1);
        Tensor std = Torch.fromFloats(Sam2Preprocessor.STD, 1, 3, 1, 1);
        double maxLevels = Torch.toDoubles(px.cpu().sub(want).abs().mul(std).mul(Nn.s(255)).max())[0];
        report.addProperty("preprocess_max_abs_uint8_levels", maxLevels);
        if (maxLevels > 1.0001) {
            failures.add("preprocessing differs from pixel_values by " + maxLevels + " levels");
        }

        // float32, TF32 off
        JsonObject fp32 = new JsonObject();
        try (Tf32 off = Tf32.off()) {
            long t0 = System.nanoTime();
            try (Sam2Model m = Sam2Model.load(file(dir, tag, "_weights.safetensors"), config, Sam2Weights.SA2VA_PREFIX,
                    ScalarType.Float, device)) {
                fp32.addProperty("load_seconds", (System.nanoTime() - t0) / 1e9);
                long t1 = System.nanoTime();
                Sam2Comparison c = Sam2Comparison.run(m, in, ref);
                fp32.addProperty("run_and_compare_seconds", (System.nanoTime() - t1) / 1e9);
                fp32.add("relative_error", json(c.errors));
                fp32.addProperty("max_relative_error", c.maxError());
                fp32.add("best_index", bestJson(c));
                c.errors.forEach((k, e) -> {
                    if (!(e <= 1e-4)) {
                        failures.add("fp32 " + k + ": " + e + " > 1e-4");
                    }
                });
                for (String p : Sam2Comparison.PROMPTS) {
                    if (!Arrays.equals(c.javaBest.get(p), c.refBest.get(p))) {
                        failures.add("fp32 " + p + ": selected mask " + Arrays.toString(c.javaBest.get(p)) + ", HF "
                                + Arrays.toString(c.refBest.get(p)));
                    }
                }
                System.out.printf(tag + " fp32: max relative error %.3e%n", c.maxError());
            }
        }
        report.add("float32", fp32);
        if (device.is_cuda()) {
            torch_cuda.getAllocator().emptyCache(); // the fp32 weights go before the bf16 ones come
        }

        // bfloat16
        JsonObject bf = new JsonObject();
        long t0 = System.nanoTime();
        try (Sam2Model m = Sam2Model.load(file(dir, tag, "_weights.safetensors"), config, Sam2Weights.SA2VA_PREFIX,
                ScalarType.BFloat16, device)) {
            bf.addProperty("load_seconds", (System.nanoTime() - t0) / 1e9);
            Sam2Comparison c = Sam2Comparison.run(m, in, ref);
            Map<String, Double> hf = Sam2Comparison.errorsOf(hfBf16, ref, c.errors.keySet());
            Map<String, Double> judged = judgedBf16(c);
            Map<String, Double> bound = judgeBf16(c, judged, hf, failures);
            bf.add("relative_error", json(c.errors));
            bf.add("hf_bf16_relative_error", json(hf));
            bf.add("bound", json(bound));
            bf.addProperty("max_relative_error_judged", judged.values().stream().mapToDouble(Double::doubleValue)
                    .max().orElse(0));
            bf.add("best_index", bestJson(c));
            System.out.printf(tag + " bf16: max relative error %.3e (judged keys)%n",
                    judged.values().stream().mapToDouble(Double::doubleValue).max().orElse(0));
        }
        report.add("bfloat16", bf);
        report.add("failures", new GsonBuilder().create().toJsonTree(failures));
        return new Result(report, failures);
    }

    /** The bf16 bound of a key: max(2e-2, 1.5 × HF's own bf16 error on it), 2e-2 where HF's is unknown. */
    static double bf16Bound(Double hfError) {
        return Math.max(2e-2, 1.5 * (hfError == null ? 0.0 : hfError));
    }

    /**
     * The keys judged in bf16 and their errors: the per-stage keys, plus each prompt's selected mask where the
     * selection agrees with HF's (and then, for lang, its upsampled versions).
     */
    static Map<String, Double> judgedBf16(Sam2Comparison c) {
        Map<String, Double> judged = c.stageErrors();
        for (String p : Sam2Comparison.PROMPTS) {
            if (Arrays.equals(c.javaBest.get(p), c.refBest.get(p))) {
                judged.put(p + ".best_mask", c.errors.get(p + ".best_mask"));
            }
        }
        if (Arrays.equals(c.javaBest.get("lang"), c.refBest.get("lang"))) {
            c.errors.forEach((k, e) -> {
                if (k.startsWith("lang.upsampled")) {
                    judged.put(k, e);
                }
            });
        }
        return judged;
    }

    /**
     * The bf16 rule, shared by the tiny (committed fixture) and large (generated on the host) checks: every judged
     * key within {@link #bf16Bound} of HF's own bf16 error {@code hf}, and the same selected mask wherever the
     * reference's IoU top-2 margin is above 0.01. Adds one line per violation to {@code failures}; returns the
     * bound of every judged key.
     */
    static Map<String, Double> judgeBf16(Sam2Comparison c, Map<String, Double> judged, Map<String, Double> hf,
                                         List<String> failures) {
        for (String p : Sam2Comparison.PROMPTS) {
            Double margin = c.refMargin.get(p);
            if (margin != null && margin > 0.01 && !Arrays.equals(c.javaBest.get(p), c.refBest.get(p))) {
                failures.add("bf16 " + p + ": selected mask " + Arrays.toString(c.javaBest.get(p)) + ", HF "
                        + Arrays.toString(c.refBest.get(p)) + " (IoU margin " + margin + ")");
            }
        }
        Map<String, Double> bound = new LinkedHashMap<>();
        judged.forEach((k, e) -> {
            double b = bf16Bound(hf.get(k));
            bound.put(k, b);
            if (!(e <= b)) {
                failures.add("bf16 " + k + ": " + e + " > " + b + " (HF bf16: " + hf.get(k) + ")");
            }
        });
        return bound;
    }

    static JsonObject json(Map<String, Double> m) {
        JsonObject o = new JsonObject();
        m.forEach(o::addProperty);
        return o;
    }

    static JsonObject bestJson(Sam2Comparison c) {
        JsonObject o = new JsonObject();
        for (String p : Sam2Comparison.PROMPTS) {
            JsonObject e = new JsonObject();
            e.addProperty("java", Arrays.toString(c.javaBest.get(p)));
            e.addProperty("hf", Arrays.toString(c.refBest.get(p)));
            if (c.refMargin.get(p) != null) {
                e.addProperty("hf_iou_top2_margin", c.refMargin.get(p));
            }
            o.add(p, e);
        }
        return o;
    }
}
