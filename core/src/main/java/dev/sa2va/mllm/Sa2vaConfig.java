package dev.sa2va.mllm;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The parts of a Sa2VA {@code config.json} (Sa2VAChatConfig) that the MLLM path needs: {@code vision_config}
 * (InternViT), {@code llm_config} (Qwen2), {@code template}, {@code downsample_ratio}, {@code ps_version},
 * {@code select_layer}. Everything the Java path does not implement (InternLM2, InternViT-6B's RMSNorm/QK-norm,
 * sliding-window or scaled RoPE, another downsample ratio) is rejected here, naming the key, rather than
 * computed wrongly later.
 *
 * <p>The vocabulary size is taken from the checkpoint (Sa2VA resizes the embedding to the tokenizer), see
 * {@link MllmWeights}; {@link Llm#vocabSize()} is the config's value.
 */
public record Sa2vaConfig(Vision vision, Llm llm, String template, double downsampleRatio, String psVersion,
                          int selectLayer) {

    /** InternViT dimensions. */
    public record Vision(int hiddenSize, int numLayers, int numHeads, int intermediateSize, int imageSize,
                         int patchSize, double layerNormEps, boolean qkvBias) {
        public int headDim() {
            return hiddenSize / numHeads;
        }

        /** Patches per side of the position table (image / patch). */
        public int gridSize() {
            return imageSize / patchSize;
        }
    }

    /** Qwen2 dimensions. */
    public record Llm(int hiddenSize, int numLayers, int numHeads, int numKvHeads, int intermediateSize,
                      double rmsNormEps, double ropeTheta, boolean tieWordEmbeddings, int vocabSize,
                      int maxPositionEmbeddings) {
        public int headDim() {
            return hiddenSize / numHeads;
        }
    }

    public Sa2vaConfig {
        if (vision.hiddenSize() % vision.numHeads() != 0) {
            throw new IllegalArgumentException("vision_config: hidden_size " + vision.hiddenSize()
                    + " not divisible by num_attention_heads " + vision.numHeads());
        }
        if (vision.imageSize() % vision.patchSize() != 0) {
            throw new IllegalArgumentException("vision_config: image_size " + vision.imageSize()
                    + " not a multiple of patch_size " + vision.patchSize());
        }
        if (llm.hiddenSize() % llm.numHeads() != 0 || llm.numHeads() % llm.numKvHeads() != 0) {
            throw new IllegalArgumentException("llm_config: hidden_size " + llm.hiddenSize() + ", num_attention_heads "
                    + llm.numHeads() + ", num_key_value_heads " + llm.numKvHeads() + " are inconsistent");
        }
        if (llm.headDim() % 2 != 0) {
            throw new IllegalArgumentException("llm_config: head dimension " + llm.headDim() + " must be even (RoPE)");
        }
        if (downsampleRatio != 0.5) {
            throw new IllegalArgumentException("downsample_ratio " + downsampleRatio + " not supported (Sa2VA uses 0.5)");
        }
        if (!psVersion.equals("v1") && !psVersion.equals("v2")) {
            throw new IllegalArgumentException("ps_version '" + psVersion + "' not supported (v1 or v2)");
        }
        if (selectLayer >= 0 || -selectLayer > vision.numLayers()) {
            throw new IllegalArgumentException("select_layer " + selectLayer + " out of range for "
                    + vision.numLayers() + " vision layers (negative index expected, -1 = last)");
        }
        ChatTemplate.byName(template);
    }

    /** Image tokens per tile after pixel shuffle: (image/patch)² · ratio². 256 for 448-px tiles. */
    public int tokensPerTile() {
        int g = vision.gridSize();
        return (int) Math.round(g * g * downsampleRatio * downsampleRatio);
    }

    /** Reads {@code config.json} (a file, or a model folder holding one). */
    public static Sa2vaConfig read(Path fileOrDir) throws IOException {
        Path file = Files.isDirectory(fileOrDir) ? fileOrDir.resolve("config.json") : fileOrDir;
        if (!Files.isRegularFile(file)) {
            throw new IOException("Sa2VA config not found: " + file);
        }
        JsonObject root;
        try {
            root = JsonParser.parseString(Files.readString(file)).getAsJsonObject();
        } catch (RuntimeException e) {
            throw new IOException(file + ": not a valid JSON object (" + e.getMessage() + ")", e);
        }
        try {
            return parse(root, file.toString());
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    static Sa2vaConfig parse(JsonObject root, String where) {
        JsonObject v = object(root, "vision_config");
        JsonObject l = object(root, "llm_config");

        String normType = str(v, "norm_type", "layer_norm", "vision_config");
        if (!normType.equals("layer_norm")) {
            throw new IllegalArgumentException("vision_config.norm_type '" + normType + "' not supported (InternViT-300M "
                    + "uses layer_norm; the 6B ViT with rms_norm is not implemented)");
        }
        if (bool(v, "qk_normalization", false, "vision_config")) {
            throw new IllegalArgumentException("vision_config.qk_normalization=true not supported (InternViT-6B)");
        }
        String vAct = str(v, "hidden_act", "gelu", "vision_config");
        if (!vAct.equals("gelu")) {
            throw new IllegalArgumentException("vision_config.hidden_act '" + vAct + "' not supported (gelu)");
        }
        Vision vision = new Vision(integer(v, "hidden_size", "vision_config"), integer(v, "num_hidden_layers", "vision_config"),
                integer(v, "num_attention_heads", "vision_config"), integer(v, "intermediate_size", "vision_config"),
                integer(v, "image_size", "vision_config"), integer(v, "patch_size", "vision_config"),
                number(v, "layer_norm_eps", 1e-6, "vision_config"), bool(v, "qkv_bias", true, "vision_config"));
        int forced = root.has("force_image_size") && !root.get("force_image_size").isJsonNull()
                ? integer(root, "force_image_size", "") : vision.imageSize();
        if (forced != vision.imageSize()) {
            throw new IllegalArgumentException("force_image_size " + forced + " differs from vision_config.image_size "
                    + vision.imageSize() + " (not supported)");
        }

        String arch = l.has("architectures") && l.get("architectures").isJsonArray()
                && l.getAsJsonArray("architectures").size() > 0
                ? l.getAsJsonArray("architectures").get(0).getAsString() : str(l, "model_type", "qwen2", "llm_config");
        if (!arch.equals("Qwen2ForCausalLM") && !arch.equals("qwen2")) {
            throw new IllegalArgumentException("llm_config.architectures '" + arch + "' not supported: only "
                    + "Qwen2ForCausalLM (Sa2VA-1B/4B, InternVL3-based) is implemented");
        }
        String lAct = str(l, "hidden_act", "silu", "llm_config");
        if (!lAct.equals("silu")) {
            throw new IllegalArgumentException("llm_config.hidden_act '" + lAct + "' not supported (silu)");
        }
        if (bool(l, "use_sliding_window", false, "llm_config")) {
            throw new IllegalArgumentException("llm_config.use_sliding_window=true not supported");
        }
        // transformers 4.x writes rope_theta/rope_scaling at the top of llm_config, 5.x nests rope_parameters
        double theta;
        JsonObject rp = l.has("rope_parameters") && l.get("rope_parameters").isJsonObject()
                ? l.getAsJsonObject("rope_parameters") : null;
        if (rp != null) {
            String type = str(rp, "rope_type", "default", "llm_config.rope_parameters");
            if (!type.equals("default")) {
                throw new IllegalArgumentException("llm_config.rope_parameters.rope_type '" + type + "' not supported");
            }
            theta = number(rp, "rope_theta", 10000.0, "llm_config.rope_parameters");
        } else {
            theta = number(l, "rope_theta", 10000.0, "llm_config");
        }
        if (l.has("rope_scaling") && !l.get("rope_scaling").isJsonNull()) {
            JsonObject rs = l.getAsJsonObject("rope_scaling");
            String type = rs.has("rope_type") ? rs.get("rope_type").getAsString()
                    : rs.has("type") ? rs.get("type").getAsString() : "?";
            if (!type.equals("default")) {
                throw new IllegalArgumentException("llm_config.rope_scaling type '" + type + "' not supported");
            }
        }
        int hidden = integer(l, "hidden_size", "llm_config");
        int heads = integer(l, "num_attention_heads", "llm_config");
        if (l.has("head_dim") && !l.get("head_dim").isJsonNull() && integer(l, "head_dim", "llm_config") != hidden / heads) {
            throw new IllegalArgumentException("llm_config.head_dim " + integer(l, "head_dim", "llm_config")
                    + " differs from hidden_size/num_attention_heads (not Qwen2)");
        }
        Llm llm = new Llm(hidden, integer(l, "num_hidden_layers", "llm_config"), heads,
                l.has("num_key_value_heads") ? integer(l, "num_key_value_heads", "llm_config") : heads,
                integer(l, "intermediate_size", "llm_config"), number(l, "rms_norm_eps", 1e-6, "llm_config"), theta,
                bool(l, "tie_word_embeddings", false, "llm_config"),
                l.has("vocab_size") ? integer(l, "vocab_size", "llm_config") : -1,
                l.has("max_position_embeddings") ? integer(l, "max_position_embeddings", "llm_config") : 32768);

        String template = str(root, "template", null, "");
        double ratio = number(root, "downsample_ratio", 0.5, "");
        // Sa2VAChatConfig defaults to v1; InternVL2.5-based checkpoints set v2 explicitly
        String ps = str(root, "ps_version", "v1", "");
        int select = root.has("select_layer") ? integer(root, "select_layer", "") : -1;
        return new Sa2vaConfig(vision, llm, template, ratio, ps, select);
    }

    // ---- JSON helpers: every failure names the key -------------------------------------------------------------

    private static String path(String parent, String key) {
        return parent.isEmpty() ? key : parent + "." + key;
    }

    private static JsonObject object(JsonObject o, String key) {
        JsonElement e = o.get(key);
        if (e == null || !e.isJsonObject()) {
            throw new IllegalArgumentException("missing object '" + key + "'");
        }
        return e.getAsJsonObject();
    }

    private static int integer(JsonObject o, String key, String parent) {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            throw new IllegalArgumentException("missing key '" + path(parent, key) + "'");
        }
        try {
            if (e.isJsonArray()) {  // transformers 5 may write [h, w] sizes
                int a = e.getAsJsonArray().get(0).getAsInt(), b = e.getAsJsonArray().get(e.getAsJsonArray().size() - 1).getAsInt();
                if (a != b) {
                    throw new IllegalArgumentException("non-square " + path(parent, key) + " " + e + " not supported");
                }
                return a;
            }
            double d = e.getAsDouble();
            if (d != Math.rint(d)) {
                throw new IllegalArgumentException(path(parent, key) + " must be an integer, got " + e);
            }
            return (int) d;
        } catch (NumberFormatException | IllegalStateException | UnsupportedOperationException ex) {
            throw new IllegalArgumentException(path(parent, key) + " must be a number, got " + e);
        }
    }

    private static double number(JsonObject o, String key, double dflt, String parent) {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            return dflt;
        }
        try {
            return e.getAsDouble();
        } catch (NumberFormatException | IllegalStateException | UnsupportedOperationException ex) {
            throw new IllegalArgumentException(path(parent, key) + " must be a number, got " + e);
        }
    }

    private static boolean bool(JsonObject o, String key, boolean dflt, String parent) {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            return dflt;
        }
        if (!e.isJsonPrimitive()) {
            throw new IllegalArgumentException(path(parent, key) + " must be a boolean, got " + e);
        }
        return e.getAsJsonPrimitive().isBoolean() ? e.getAsBoolean() : e.getAsDouble() != 0;
    }

    private static String str(JsonObject o, String key, String dflt, String parent) {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            if (dflt == null) {
                throw new IllegalArgumentException("missing key '" + path(parent, key) + "'");
            }
            return dflt;
        }
        if (!e.isJsonPrimitive()) {
            throw new IllegalArgumentException(path(parent, key) + " must be a string, got " + e);
        }
        return e.getAsString();
    }
}
