package dev.sa2va.model;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sa2va.mllm.Sa2vaConfig;
import dev.sa2va.sam2.Sam2Config;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The dimensions of a Sa2VA model: the MLLM ({@link Sa2vaConfig}), SAM2 ({@link Sam2Config}) and the vocabulary
 * size. Real checkpoints carry the MLLM part in {@code config.json}; their SAM2 is always SAM 2.0 Hiera-L, which
 * Sa2VA hard-codes. A {@code config.json} may name another SAM2 with the key {@code "sam2_config"} (a preset name
 * such as "hiera-large", or an object in the format of core/verification/sam2's reference metadata); the tests use
 * that for tiny models.
 *
 * <p>Presets at the true sizes ({@link #sa2va1b()}, {@link #sa2va4b()}) serve random-weight benchmarks and memory
 * runs, since the real weights are several GB.
 */
public record Sa2vaArchitecture(String name, Sa2vaConfig mllm, Sam2Config sam2, long vocab) {
    /** Config key of the optional SAM2 configuration. */
    public static final String SAM2_CONFIG_KEY = "sam2_config";
    /** Vocabulary of the InternVL2.5 Qwen tokenizer plus Sa2VA's five tokens (checkpoints carry their own). */
    public static final long QWEN_SA2VA_VOCAB = 151679;

    public Sa2vaArchitecture {
        if (mllm == null || sam2 == null) {
            throw new IllegalArgumentException("mllm and sam2 configurations are required");
        }
        if (vocab <= 0) {
            throw new IllegalArgumentException("vocab must be positive, got " + vocab);
        }
    }

    private static Sa2vaConfig.Vision internVit300m() {
        return new Sa2vaConfig.Vision(1024, 24, 16, 4096, 448, 14, 1e-6, true);
    }

    /** Sa2VA-1B: InternViT-300M + Qwen2.5-0.5B (24 layers, hidden 896, 14/2 heads, MLP 4864, tied head), qwen_chat. */
    public static Sa2vaArchitecture sa2va1b() {
        Sa2vaConfig.Llm llm = new Sa2vaConfig.Llm(896, 24, 14, 2, 4864, 1e-6, 1e6, true, (int) QWEN_SA2VA_VOCAB, 32768);
        return new Sa2vaArchitecture("sa2va-1b", new Sa2vaConfig(internVit300m(), llm, "qwen_chat", 0.5, "v2", -1),
                Sam2Config.hieraLarge(), QWEN_SA2VA_VOCAB);
    }

    /**
     * Sa2VA-4B: InternViT-300M + Qwen2.5-3B (36 layers, hidden 2048, 16/2 heads, head_dim 128, MLP 11008, tied head),
     * phi3_chat (Sa2VA's 4B config uses phi3's prompt format on the Qwen tokenizer).
     */
    public static Sa2vaArchitecture sa2va4b() {
        Sa2vaConfig.Llm llm = new Sa2vaConfig.Llm(2048, 36, 16, 2, 11008, 1e-6, 1e6, true, (int) QWEN_SA2VA_VOCAB, 32768);
        return new Sa2vaArchitecture("sa2va-4b", new Sa2vaConfig(internVit300m(), llm, "phi3_chat", 0.5, "v2", -1),
                Sam2Config.hieraLarge(), QWEN_SA2VA_VOCAB);
    }

    /**
     * A toy model that runs anywhere in a fraction of a second (InternViT 2×64 on 84-px tiles, Qwen2 3×64, a 128-px
     * Hiera with SAM2's real prompt width 256), for demonstrations and tests of the plumbing with random weights.
     */
    public static Sa2vaArchitecture tiny() {
        Sa2vaConfig.Vision v = new Sa2vaConfig.Vision(64, 2, 4, 128, 84, 14, 1e-6, true);
        Sa2vaConfig.Llm llm = new Sa2vaConfig.Llm(64, 3, 4, 2, 160, 1e-6, 1e4, true, (int) QWEN_SA2VA_VOCAB, 4096);
        Sam2Config sam = new Sam2Config(128, new int[] {8, 16, 32, 64}, new int[] {1, 2, 4, 8}, new int[] {1, 2, 3, 2},
                new int[] {8, 4, 6, 2}, new int[] {5}, new int[] {4, 4}, 256, 4, 64, 32);
        return new Sa2vaArchitecture("tiny", new Sa2vaConfig(v, llm, "qwen_chat", 0.5, "v2", -1), sam, QWEN_SA2VA_VOCAB);
    }

    /** "sa2va-1b", "sa2va-4b" (also "1b", "4b") or "tiny". */
    public static Sa2vaArchitecture byName(String name) {
        switch (name.toLowerCase(Locale.ROOT)) {
            case "sa2va-1b": case "1b": return sa2va1b();
            case "sa2va-4b": case "4b": return sa2va4b();
            case "tiny": return tiny();
            default: throw new IllegalArgumentException("unknown Sa2VA architecture '" + name
                    + "' (sa2va-1b, sa2va-4b, tiny)");
        }
    }

    /**
     * The SAM2 configuration of a model folder's {@code config.json}: {@value #SAM2_CONFIG_KEY} if present, else
     * Hiera-L. IOException naming the file and the key when the value is not a known preset or a valid object.
     */
    public static Sam2Config readSam2Config(Path dir) throws IOException {
        Path file = Files.isDirectory(dir) ? dir.resolve("config.json") : dir;
        JsonObject root;
        try {
            root = JsonParser.parseString(Files.readString(file)).getAsJsonObject();
        } catch (IOException e) {
            throw new IOException("Sa2VA config not readable: " + file + " (" + e.getMessage() + ")", e);
        } catch (RuntimeException e) {
            throw new IOException(file + ": not a valid JSON object (" + e.getMessage() + ")", e);
        }
        JsonElement e = root.get(SAM2_CONFIG_KEY);
        if (e == null || e.isJsonNull()) {
            return Sam2Config.hieraLarge();
        }
        try {
            if (e.isJsonPrimitive()) {
                return Sam2Config.preset(e.getAsString());
            }
            return Sam2Config.fromReferenceJson(e.toString());
        } catch (IllegalArgumentException ex) {
            throw new IOException(file + ": key '" + SAM2_CONFIG_KEY + "': " + ex.getMessage(), ex);
        }
    }

    @Override
    public String toString() {
        Sa2vaConfig.Llm l = mllm.llm();
        return name + "[llm " + l.numLayers() + "x" + l.hiddenSize() + ", vit " + mllm.vision().numLayers() + "x"
                + mllm.vision().hiddenSize() + ", sam2 dims " + java.util.Arrays.toString(sam2.dims()) + ", vocab " + vocab
                + ", " + mllm.template() + "]";
    }
}
