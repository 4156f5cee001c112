package dev.sa2va.lora;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import dev.sa2va.io.SafeTensors;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;

/**
 * LoRA adapters in the format of Hugging Face PEFT, so they move between this library and Python: a directory with
 * {@code adapter_model.safetensors} holding {@code base_model.model.<module>.lora_A.weight} ([r, d_in]) and
 * {@code ...lora_B.weight} ([d_out, r]) per adapted module, and {@code adapter_config.json} ({@code peft_type "LORA"},
 * {@code r}, {@code lora_alpha}, {@code use_rslora}, {@code lora_dropout}, {@code target_modules}, and
 * {@code rank_pattern} / {@code alpha_pattern} for modules that differ from the common values).
 *
 * <p>Module names are those of the base model (e.g. {@code model.layers.0.self_attn.q_proj}). Pattern keys are
 * matched as PEFT does ({@code re.match(rf"(.*\.)?({key})$", module)}, first match wins); this class writes them as
 * escaped full module names. Unsupported PEFT features (DoRA, fan_in_fan_out, trained biases, embedding adapters)
 * are rejected with an {@link IOException} naming the file and field or key, never silently ignored.
 */
public final class PeftAdapters {
    public static final String WEIGHTS_FILE = "adapter_model.safetensors";
    public static final String CONFIG_FILE = "adapter_config.json";
    /** Prefix PeftModel puts before module names in its state dict. */
    public static final String PREFIX = "base_model.model.";

    private static final System.Logger LOG = System.getLogger(PeftAdapters.class.getName());

    private PeftAdapters() {
    }

    /** One module's adapter as stored: A, B (the stored dtype, on the requested device) and its scaling facts. */
    public record Adapter(String module, Tensor loraA, Tensor loraB, int rank, double alpha, boolean rsLora,
                          double dropout) {
        public double scaling() {
            return rsLora ? alpha / Math.sqrt(rank) : alpha / rank;
        }
    }

    /**
     * Writes the adapters of {@code modules} (module name -> layer) into {@code dir} (created if needed). The float32
     * master weights are stored. {@code baseModel} goes into {@code base_model_name_or_path} (may be null).
     */
    public static void save(Path dir, Map<String, LoraLinear> modules, String baseModel) throws IOException {
        if (modules == null || modules.isEmpty()) {
            throw new IllegalArgumentException("modules: nothing to save");
        }
        Boolean rs = null;
        Map<Integer, Integer> rankVotes = new HashMap<>();
        Map<Double, Integer> alphaVotes = new HashMap<>();
        Map<Double, Integer> dropoutVotes = new HashMap<>();
        for (Map.Entry<String, LoraLinear> e : modules.entrySet()) {
            String name = e.getKey();
            if (name == null || name.isEmpty() || name.contains(" ")) {
                throw new IllegalArgumentException("modules: invalid module name '" + name + "'");
            }
            LoraLinear l = e.getValue();
            if (l.isMerged()) {
                throw new IllegalArgumentException("modules['" + name + "']: adapter is merged into the weight; unmerge() "
                        + "before saving it");
            }
            if (rs != null && rs != l.rsLora()) {
                throw new IllegalArgumentException("modules['" + name + "']: use_rslora differs between modules, but a PEFT "
                        + "adapter has a single use_rslora flag");
            }
            rs = l.rsLora();
            rankVotes.merge(l.rank(), 1, Integer::sum);
            alphaVotes.merge(l.alpha(), 1, Integer::sum);
            dropoutVotes.merge(l.dropout(), 1, Integer::sum);
        }
        int r = mostCommon(rankVotes);
        double alpha = mostCommon(alphaVotes);
        double dropout = mostCommon(dropoutVotes);
        if (dropoutVotes.size() > 1) {
            LOG.log(System.Logger.Level.WARNING, "modules use different dropout rates; adapter_config.json stores one "
                    + "(lora_dropout = {0}); it does not affect inference", dropout);
        }
        Map<String, Tensor> tensors = new TreeMap<>();
        JsonObject rankPattern = new JsonObject(), alphaPattern = new JsonObject();
        JsonArray targets = new JsonArray();
        for (String name : new TreeSet<>(modules.keySet())) {
            LoraLinear l = modules.get(name);
            tensors.put(PREFIX + name + ".lora_A.weight", l.loraA());
            tensors.put(PREFIX + name + ".lora_B.weight", l.loraB());
            targets.add(name);
            if (l.rank() != r) {
                rankPattern.addProperty(regexLiteral(name), l.rank());
            }
            if (l.alpha() != alpha) {
                alphaPattern.add(regexLiteral(name), number(l.alpha()));
            }
        }
        JsonObject cfg = new JsonObject();
        cfg.add("alpha_pattern", alphaPattern);
        if (baseModel == null) {
            cfg.add("base_model_name_or_path", JsonNull.INSTANCE);
        } else {
            cfg.addProperty("base_model_name_or_path", baseModel);
        }
        cfg.addProperty("bias", "none");
        cfg.addProperty("fan_in_fan_out", false);
        cfg.addProperty("inference_mode", true);
        cfg.addProperty("init_lora_weights", true);
        cfg.add("lora_alpha", number(alpha));
        cfg.addProperty("lora_dropout", dropout);
        cfg.add("modules_to_save", JsonNull.INSTANCE);
        cfg.addProperty("peft_type", "LORA");
        cfg.addProperty("r", r);
        cfg.add("rank_pattern", rankPattern);
        cfg.add("revision", JsonNull.INSTANCE);
        cfg.add("target_modules", targets);
        cfg.add("task_type", JsonNull.INSTANCE);
        cfg.addProperty("use_dora", false);
        cfg.addProperty("use_rslora", rs);
        Files.createDirectories(dir);
        SafeTensors.save(dir.resolve(WEIGHTS_FILE), tensors, Map.of("format", "pt"));
        Files.writeString(dir.resolve(CONFIG_FILE), new GsonBuilder().setPrettyPrinting().serializeNulls().create()
                .toJson(cfg) + "\n", StandardCharsets.UTF_8);
    }

    /** Every adapter stored in {@code dir}, tensors on {@code device} (null: CPU) in their stored dtype. */
    public static Map<String, Adapter> read(Path dir, Device device) throws IOException {
        Path cfgFile = dir.resolve(CONFIG_FILE);
        if (!Files.isRegularFile(cfgFile)) {
            throw new IOException(cfgFile + ": not found (a PEFT adapter directory has " + CONFIG_FILE + " and "
                    + WEIGHTS_FILE + ")");
        }
        JsonObject cfg;
        try {
            JsonElement el = JsonParser.parseString(Files.readString(cfgFile, StandardCharsets.UTF_8));
            if (!el.isJsonObject()) {
                throw new IOException(cfgFile + ": not a JSON object");
            }
            cfg = el.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new IOException(cfgFile + ": invalid JSON: " + e.getMessage(), e);
        }
        String type = string(cfg, "peft_type", cfgFile, null);
        if (!"LORA".equals(type)) {
            throw new IOException(cfgFile + ": peft_type is " + type + ", only LORA adapters are supported");
        }
        if (bool(cfg, "use_dora", cfgFile, false)) {
            throw new IOException(cfgFile + ": use_dora is true; DoRA adapters are not supported");
        }
        if (bool(cfg, "fan_in_fan_out", cfgFile, false)) {
            throw new IOException(cfgFile + ": fan_in_fan_out is true (Conv1D-style weights); not supported");
        }
        String biasMode = string(cfg, "bias", cfgFile, "none");
        if (!"none".equals(biasMode)) {
            throw new IOException(cfgFile + ": bias is '" + biasMode + "'; adapters with trained biases are not supported");
        }
        int r = (int) number(cfg, "r", cfgFile, Double.NaN);
        double alpha = number(cfg, "lora_alpha", cfgFile, Double.NaN);
        double dropout = number(cfg, "lora_dropout", cfgFile, 0.0);
        boolean rs = bool(cfg, "use_rslora", cfgFile, false);
        Map<String, Double> rankPattern = patterns(cfg, "rank_pattern", cfgFile);
        Map<String, Double> alphaPattern = patterns(cfg, "alpha_pattern", cfgFile);

        Path weights = dir.resolve(WEIGHTS_FILE);
        if (!Files.isRegularFile(weights)) {
            if (Files.isRegularFile(dir.resolve("adapter_model.bin"))) {
                throw new IOException(dir.resolve("adapter_model.bin") + ": pickled PEFT adapters are not supported; "
                        + "convert to " + WEIGHTS_FILE);
            }
            throw new IOException(weights + ": not found");
        }
        Map<String, Adapter> out = new LinkedHashMap<>();
        try (SafeTensors st = SafeTensors.open(weights)) {
            for (String key : st.keys()) {
                if (key.endsWith(".lora_B.weight")) {
                    continue;
                }
                if (!key.endsWith(".lora_A.weight")) {
                    throw new IOException(weights + ": tensor '" + key + "' is not a LoRA A/B weight of a linear layer "
                            + "(embedding adapters, DoRA magnitudes and saved modules are not supported)");
                }
                String stem = key.substring(0, key.length() - ".lora_A.weight".length());
                String module = stem.startsWith(PREFIX) ? stem.substring(PREFIX.length()) : stem;
                String bKey = stem + ".lora_B.weight";
                if (!st.contains(bKey)) {
                    throw new IOException(weights + ": tensor '" + bKey + "' missing (its lora_A is there)");
                }
                SafeTensors.Entry ea = st.entry(key), eb = st.entry(bKey);
                if (ea.shape().length != 2 || eb.shape().length != 2 || ea.shape()[0] != eb.shape()[1]) {
                    throw new IOException(weights + ": '" + key + "' " + ea + " and '" + bKey + "' " + eb
                            + " are not [r, d_in] and [d_out, r] with one r");
                }
                int rank = (int) ea.shape()[0];
                Double patternRank = match(rankPattern, module);
                int expected = patternRank != null ? patternRank.intValue() : r;
                if (rank != expected) {
                    throw new IOException(weights + ": '" + key + "' has rank " + rank + " but " + CONFIG_FILE
                            + " gives " + expected + " for module '" + module + "'");
                }
                Double patternAlpha = match(alphaPattern, module);
                double a = patternAlpha != null ? patternAlpha : alpha;
                out.put(module, new Adapter(module, st.get(key, null, device), st.get(bKey, null, device), rank, a, rs,
                        dropout));
            }
            for (String key : st.keys()) {
                if (key.endsWith(".lora_B.weight")) {
                    String stem = key.substring(0, key.length() - ".lora_B.weight".length());
                    if (!st.contains(stem + ".lora_A.weight")) {
                        throw new IOException(weights + ": tensor '" + stem + ".lora_A.weight' missing (its lora_B is there)");
                    }
                }
            }
        }
        return out;
    }

    /**
     * Copies the stored adapters into existing layers (module name -> layer). Each requested module must be in the
     * file with the layer's rank, alpha and rsLoRA setting; build layers from {@link #read} to adopt the file's.
     */
    public static void loadInto(Path dir, Map<String, LoraLinear> modules) throws IOException {
        Map<String, Adapter> stored = read(dir, null);
        for (Map.Entry<String, LoraLinear> e : modules.entrySet()) {
            String name = e.getKey();
            LoraLinear l = e.getValue();
            Adapter a = stored.get(name);
            String key = PREFIX + name + ".lora_A.weight";
            if (a == null) {
                throw new IOException(dir.resolve(WEIGHTS_FILE) + ": no adapter for module '" + name + "' (key '" + key + "')");
            }
            if (a.rank() != l.rank() || a.alpha() != l.alpha() || a.rsLora() != l.rsLora()) {
                throw new IOException(dir.resolve(WEIGHTS_FILE) + ": module '" + name + "' is stored with r=" + a.rank()
                        + " alpha=" + a.alpha() + " use_rslora=" + a.rsLora() + " but the layer has r=" + l.rank()
                        + " alpha=" + l.alpha() + " use_rslora=" + l.rsLora());
            }
            if (a.loraA().size(1) != l.inFeatures() || a.loraB().size(0) != l.outFeatures()) {
                throw new IOException(dir.resolve(WEIGHTS_FILE) + ": '" + key + "' is for a " + a.loraB().size(0) + "x"
                        + a.loraA().size(1) + " layer but module '" + name + "' is " + l.outFeatures() + "x" + l.inFeatures());
            }
            l.setAdapter(a.loraA(), a.loraB());
        }
        for (Adapter a : stored.values()) {
            a.loraA().close();
            a.loraB().close();
        }
    }

    // ---- helpers -----------------------------------------------------------------------------------------------

    /** A regex matching exactly {@code s} (PEFT treats pattern keys as regexes). */
    static String regexLiteral(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) {
            if ("\\.^$|?*+()[]{}".indexOf(c) >= 0) {
                b.append('\\');
            }
            b.append(c);
        }
        return b.toString();
    }

    /** PEFT's rule: the first key k (in file order) with re.match(rf"(.*\.)?({k})$", module). */
    static Double match(Map<String, Double> patterns, String module) {
        for (Map.Entry<String, Double> e : patterns.entrySet()) {
            if (e.getKey().equals(module)) {
                return e.getValue();
            }
            try {
                if (Pattern.compile("(.*\\.)?(" + e.getKey() + ")").matcher(module).matches()) {
                    return e.getValue();
                }
            } catch (PatternSyntaxException ex) {
                // a key Java's regex dialect rejects can still name the module literally (checked above)
            }
        }
        return null;
    }

    private static <K> K mostCommon(Map<K, Integer> votes) {
        return votes.entrySet().stream().max(Map.Entry.<K, Integer>comparingByValue()).orElseThrow().getKey();
    }

    private static JsonElement number(double v) {
        JsonObject holder = new JsonObject();
        if (v == Math.rint(v) && Math.abs(v) < 1e15) {
            holder.addProperty("v", (long) v);
        } else {
            holder.addProperty("v", v);
        }
        return holder.get("v");
    }

    private static String string(JsonObject o, String field, Path file, String dflt) throws IOException {
        JsonElement e = o.get(field);
        if (e == null || e.isJsonNull()) {
            if (dflt == null) {
                throw new IOException(file + ": field '" + field + "' missing");
            }
            return dflt;
        }
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
            throw new IOException(file + ": field '" + field + "' is not a string: " + e);
        }
        return e.getAsString();
    }

    private static boolean bool(JsonObject o, String field, Path file, boolean dflt) throws IOException {
        JsonElement e = o.get(field);
        if (e == null || e.isJsonNull()) {
            return dflt;
        }
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isBoolean()) {
            throw new IOException(file + ": field '" + field + "' is not a boolean: " + e);
        }
        return e.getAsBoolean();
    }

    private static double number(JsonObject o, String field, Path file, double dflt) throws IOException {
        JsonElement e = o.get(field);
        if (e == null || e.isJsonNull()) {
            if (Double.isNaN(dflt)) {
                throw new IOException(file + ": field '" + field + "' missing");
            }
            return dflt;
        }
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
            throw new IOException(file + ": field '" + field + "' is not a number: " + e);
        }
        return e.getAsDouble();
    }

    private static Map<String, Double> patterns(JsonObject o, String field, Path file) throws IOException {
        Map<String, Double> out = new LinkedHashMap<>();
        JsonElement e = o.get(field);
        if (e == null || e.isJsonNull()) {
            return out;
        }
        if (!e.isJsonObject()) {
            throw new IOException(file + ": field '" + field + "' is not an object: " + e);
        }
        for (Map.Entry<String, JsonElement> p : e.getAsJsonObject().entrySet()) {
            if (!p.getValue().isJsonPrimitive() || !p.getValue().getAsJsonPrimitive().isNumber()) {
                throw new IOException(file + ": " + field + "['" + p.getKey() + "'] is not a number: " + p.getValue());
            }
            out.put(p.getKey(), p.getValue().getAsDouble());
        }
        return out;
    }
}
