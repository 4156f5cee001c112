package dev.sa2va.sam2;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sa2va.core.Torch;
import dev.sa2va.io.SafeTensors;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;

/**
 * The committed HF fixtures (core/src/test/resources/dev/sa2va/sam2/tiny, written by
 * core/verification/sam2/sam2_reference.py with HF transformers' Sam2Model): weights under Sa2VA names, inputs,
 * and HF's per-stage outputs computed in float64.
 */
final class Sam2Fixtures {
    static final String TAG = "sam2_tiny_random";

    private Sam2Fixtures() {
    }

    static Path dir() {
        URL u = Sam2Fixtures.class.getResource("/dev/sa2va/sam2/tiny/" + TAG + "_weights.safetensors");
        if (u == null) {
            throw new IllegalStateException("SAM2 tiny fixtures not on the test class path");
        }
        try {
            return Path.of(u.toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static Path weights() {
        return dir().resolve(TAG + "_weights.safetensors");
    }

    static Path image(int i) {
        return dir().resolve(TAG + "_image" + i + ".png");
    }

    static Map<String, Tensor> inputs() {
        return readAll(dir().resolve(TAG + "_inputs.safetensors"));
    }

    static Map<String, Tensor> reference() {
        return readAll(dir().resolve(TAG + "_reference.safetensors"));
    }

    static Map<String, Tensor> readAll(Path file) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        try (SafeTensors st = SafeTensors.open(file)) {
            for (String k : st.keys()) {
                m.put(k, st.get(k));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return m;
    }

    /**
     * HF's own bf16 relative error per reference key, on the device {@code device} ("cuda", "cpu"), from the
     * summary's {@code hf_bfloat16_vs_ref} (written by sam2_reference.py --bf16 [--bf16-device D]). Throws, naming the
     * command that adds it, when the committed summary has none for that device.
     */
    static Map<String, Double> hfBf16Errors(String device) {
        String regenerate = "regenerate the tiny fixture with core/verification/sam2/sam2_reference.py --config "
                + "tiny-random --threads 4 --bf16 --bf16-device " + device + " (NOTES.md next to it)";
        JsonObject summary;
        try {
            summary = JsonParser.parseString(Files.readString(dir().resolve(TAG + "_summary.json"))).getAsJsonObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        JsonElement dev = summary.get("bfloat16_device");
        if (!summary.has("hf_bfloat16_vs_ref") || dev == null || dev.isJsonNull()
                || !dev.getAsString().startsWith(device)) {
            throw new IllegalStateException("the SAM2 tiny fixture has no HF bf16 run on " + device + " (bfloat16_device: "
                    + dev + "): " + regenerate);
        }
        Map<String, Double> m = new LinkedHashMap<>();
        summary.getAsJsonObject("hf_bfloat16_vs_ref").getAsJsonObject("relative_error").entrySet()
                .forEach(e -> m.put(e.getKey(), e.getValue().getAsDouble()));
        return m;
    }

    /** The config the fixture was generated with, from the weights' metadata. */
    static Sam2Config config() {
        try (SafeTensors st = SafeTensors.open(weights())) {
            return Sam2Config.fromReferenceJson(st.metadata().get("config"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static double relError(Tensor a, Tensor ref) {
        return Torch.relError(a, ref);
    }
}
