package dev.sa2va.model;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.sa2va.core.Devices;
import dev.sa2va.sam2.Sam2Config;
import dev.sa2va.sam2.Sam2Weights;
import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Predicate;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A tiny Sa2VA checkpoint folder for CPU tests: the MLLM of the committed fixture (dev/sa2va/mllm/tiny: InternViT
 * 2×64 on 84-px tiles, Qwen2 3×64, tokenizer with Sa2VA's added tokens, text_hidden_fcs 64 → 256), plus seeded
 * random SAM2 weights of a 128-px Hiera whose prompt width is 256 (text_hidden_fcs' output), in its own shard,
 * a merged index and the SAM2 configuration under {@code sam2_config}.
 */
final class TinySa2va {
    /** 128-px Hiera (the SAM2 fixture's trunk) with SAM2's real prompt width 256. */
    static final Sam2Config SAM2 = new Sam2Config(128, new int[] {8, 16, 32, 64}, new int[] {1, 2, 4, 8},
            new int[] {1, 2, 3, 2}, new int[] {8, 4, 6, 2}, new int[] {5}, new int[] {4, 4}, 256, 4, 64, 32);
    static final String SAM2_FILE = "sam2.safetensors";

    private TinySa2va() {
    }

    static Path mllmFixture() {
        URL u = TinySa2va.class.getResource("/dev/sa2va/mllm/tiny/model");
        if (u == null) {
            throw new IllegalStateException("test fixture dev/sa2va/mllm/tiny/model not on the class path");
        }
        try {
            return Path.of(u.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static JsonObject sam2Json(Sam2Config c) {
        JsonObject o = new JsonObject();
        o.addProperty("image_size", c.imageSize());
        o.add("dims", ints(c.dims()));
        o.add("heads", ints(c.heads()));
        o.add("blocks", ints(c.blocks()));
        o.add("windows", ints(c.windows()));
        o.add("global_blocks", ints(c.globalBlocks()));
        o.add("bkg", ints(c.posEmbedBackground()));
        o.addProperty("hidden", c.hidden());
        o.addProperty("dec_heads", c.decoderHeads());
        o.addProperty("dec_mlp", c.decoderMlp());
        o.addProperty("iou_hidden", c.iouHidden());
        return o;
    }

    private static JsonArray ints(int[] a) {
        JsonArray r = new JsonArray();
        for (int v : a) {
            r.add(v);
        }
        return r;
    }

    /** Writes the folder (all keys). */
    static Path write(Path dir, long seed) throws IOException {
        return write(dir, seed, k -> true, Map.of());
    }

    /**
     * Writes the folder with only the SAM2 keys {@code keepSam2} accepts (original names) and {@code extra} tensors
     * added to the SAM2 shard (for error tests).
     */
    static Path write(Path dir, long seed, Predicate<String> keepSam2, Map<String, Tensor> extra) throws IOException {
        return write(dir, seed, SAM2, keepSam2, extra);
    }

    /** With another SAM2 configuration. */
    static Path write(Path dir, long seed, Sam2Config sam2, Predicate<String> keepSam2, Map<String, Tensor> extra)
            throws IOException {
        Files.createDirectories(dir);
        Path src = mllmFixture();
        try (var files = Files.list(src)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                String n = f.getFileName().toString();
                if (!n.equals("config.json") && !n.equals("model.safetensors.index.json")) {
                    Files.copy(f, dir.resolve(n), StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
        Gson gson = new GsonBuilder().setPrettyPrinting().create();
        JsonObject cfg = JsonParser.parseString(Files.readString(src.resolve("config.json"))).getAsJsonObject();
        cfg.add(Sa2vaArchitecture.SAM2_CONFIG_KEY, sam2Json(sam2));
        Files.writeString(dir.resolve("config.json"), gson.toJson(cfg));

        JsonObject index = JsonParser.parseString(Files.readString(src.resolve("model.safetensors.index.json")))
                .getAsJsonObject();
        JsonObject map = index.getAsJsonObject("weight_map");
        try (PointerScope s = new PointerScope(); Sam2Weights w = Sam2Weights.random(sam2, seed, ScalarType.Float,
                Devices.cpu())) {
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (var e : w.all().entrySet()) {
                if (keepSam2.test(e.getKey())) {
                    out.put(Sam2Weights.SA2VA_PREFIX + e.getKey(), e.getValue());
                }
            }
            out.putAll(extra);
            dev.sa2va.io.SafeTensors.save(dir.resolve(SAM2_FILE), out, Map.of("format", "pt"));
            for (String k : out.keySet()) {
                map.addProperty(k, SAM2_FILE);
            }
        }
        Files.writeString(dir.resolve("model.safetensors.index.json"), gson.toJson(index));
        return dir;
    }
}
