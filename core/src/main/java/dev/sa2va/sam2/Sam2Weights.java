package dev.sa2va.sam2;

import dev.sa2va.core.Devices;
import dev.sa2va.core.JavaCppDefaults;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.io.Checkpoint;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The weights of SAM2's image path, by their original SAM2 names ({@code image_encoder.trunk.*},
 * {@code image_encoder.neck.*}, {@code sam_prompt_encoder.*}, {@code sam_mask_decoder.*}, {@code no_mem_embed})
 * stored behind a prefix: {@link #SA2VA_PREFIX} in Sa2VA checkpoints, none ({@link #ORIGINAL_PREFIX}) in SAM2's own.
 *
 * <p>Loading checks the whole key set against the configuration before reading any data: a missing tensor, a
 * tensor whose shape differs, or an unexpected tensor inside the image-path modules is an {@link IOException}
 * naming the key, the expected and the found shape. Tensors of SAM2's video parts (memory attention / encoder,
 * object pointers, ...) and the mask-prompt downscaler are recognised and skipped (listed by
 * {@link #ignoredKeys()}); anything outside the prefix (the LLM of a Sa2VA checkpoint) is not looked at.
 *
 * <p>All tensors are cast to the execution dtype, except the three inputs of precomputed position encodings
 * ({@code pos_embed}, {@code pos_embed_window}, the random-Fourier matrix), which stay in float32: the encodings
 * are computed once in float32 and cast afterwards.
 */
public final class Sam2Weights implements AutoCloseable {
    static {
        JavaCppDefaults.apply(); // before any JavaCPP class initialises (see JavaCppDefaults)
    }

    public static final String SA2VA_PREFIX = "grounding_encoder.sam2_model.";
    public static final String ORIGINAL_PREFIX = "";

    /** Module prefixes of SAM2 parts the image path does not use (video memory, mask prompts). */
    static final List<String> IGNORED_PREFIXES = List.of("memory_attention.", "memory_encoder.", "mask_downsample.",
            "obj_ptr_proj.", "obj_ptr_tpos_proj.", "sam_prompt_encoder.mask_downscaling.");
    static final List<String> IGNORED_KEYS = List.of("maskmem_tpos_enc", "no_mem_pos_enc", "no_obj_ptr",
            "no_obj_embed_spatial");
    /** Module prefixes the image path owns: a key here that the configuration does not expect is an error. */
    static final List<String> OWNED_PREFIXES = List.of("image_encoder.", "sam_prompt_encoder.", "sam_mask_decoder.");
    static final List<String> FP32_KEYS = List.of("image_encoder.trunk.pos_embed", "image_encoder.trunk.pos_embed_window",
            "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix");

    private final Sam2Config config;
    private final ScalarType dtype;
    private final Device device;
    private final Map<String, Tensor> tensors;
    private final List<String> ignored;
    private final List<Pointer> derived = new ArrayList<>();
    private boolean closed;

    private Sam2Weights(Sam2Config config, ScalarType dtype, Device device, Map<String, Tensor> tensors,
                        List<String> ignored) {
        this.config = config;
        this.dtype = dtype;
        // a private copy outside any scope: the caller's Device may die with the caller's PointerScope
        this.device = Scoped.own(new Device(Devices.describe(device)));
        this.tensors = Collections.unmodifiableMap(tensors);
        this.ignored = List.copyOf(ignored);
    }

    /** Every tensor of the image path with its shape, by original SAM2 name, for {@code c}. */
    public static Map<String, long[]> expectedShapes(Sam2Config c) {
        Map<String, long[]> m = new LinkedHashMap<>();
        long d0 = c.dims()[0], hid = c.hidden();
        String t = "image_encoder.trunk.";
        m.put(t + "patch_embed.proj.weight", new long[] {d0, 3, Sam2Config.PATCH_KERNEL, Sam2Config.PATCH_KERNEL});
        m.put(t + "patch_embed.proj.bias", new long[] {d0});
        m.put(t + "pos_embed", new long[] {1, d0, c.posEmbedBackground()[0], c.posEmbedBackground()[1]});
        m.put(t + "pos_embed_window", new long[] {1, d0, c.windows()[0], c.windows()[0]});
        for (int i = 0; i < c.totalBlocks(); i++) {
            String b = t + "blocks." + i + ".";
            long din = c.blockDimIn(i), dout = c.blockDimOut(i), mlp = (long) Sam2Config.MLP_RATIO * dout;
            norm(m, b + "norm1", din);
            linear(m, b + "attn.qkv", 3 * dout, din);
            linear(m, b + "attn.proj", dout, dout);
            norm(m, b + "norm2", dout);
            linear(m, b + "mlp.layers.0", mlp, dout);
            linear(m, b + "mlp.layers.1", dout, mlp);
            if (din != dout) {
                linear(m, b + "proj", dout, din);
            }
        }
        for (int n = 0; n < 4; n++) {
            // convs[n] reads trunk level 3 - n (the coarsest first)
            m.put("image_encoder.neck.convs." + n + ".conv.weight", new long[] {hid, c.dims()[3 - n], 1, 1});
            m.put("image_encoder.neck.convs." + n + ".conv.bias", new long[] {hid});
        }
        String p = "sam_prompt_encoder.";
        m.put(p + "pe_layer.positional_encoding_gaussian_matrix", new long[] {2, hid / 2});
        for (int i = 0; i < 4; i++) {
            m.put(p + "point_embeddings." + i + ".weight", new long[] {1, hid});
        }
        m.put(p + "not_a_point_embed.weight", new long[] {1, hid});
        m.put(p + "no_mask_embed.weight", new long[] {1, hid});
        String d = "sam_mask_decoder.";
        m.put(d + "iou_token.weight", new long[] {1, hid});
        m.put(d + "mask_tokens.weight", new long[] {Sam2Config.MASK_TOKENS, hid});
        m.put(d + "obj_score_token.weight", new long[] {1, hid});
        long half = hid / Sam2Config.ATTENTION_DOWNSAMPLE;
        for (int l = 0; l < Sam2Config.DECODER_DEPTH; l++) {
            String b = d + "transformer.layers." + l + ".";
            attention(m, b + "self_attn", hid, hid);
            norm(m, b + "norm1", hid);
            attention(m, b + "cross_attn_token_to_image", hid, half);
            norm(m, b + "norm2", hid);
            linear(m, b + "mlp.layers.0", c.decoderMlp(), hid);
            linear(m, b + "mlp.layers.1", hid, c.decoderMlp());
            norm(m, b + "norm3", hid);
            norm(m, b + "norm4", hid);
            attention(m, b + "cross_attn_image_to_token", hid, half);
        }
        attention(m, d + "transformer.final_attn_token_to_image", hid, half);
        norm(m, d + "transformer.norm_final_attn", hid);
        m.put(d + "output_upscaling.0.weight", new long[] {hid, hid / 4, 2, 2});
        m.put(d + "output_upscaling.0.bias", new long[] {hid / 4});
        norm(m, d + "output_upscaling.1", hid / 4);
        m.put(d + "output_upscaling.3.weight", new long[] {hid / 4, hid / 8, 2, 2});
        m.put(d + "output_upscaling.3.bias", new long[] {hid / 8});
        m.put(d + "conv_s0.weight", new long[] {hid / 8, hid, 1, 1});
        m.put(d + "conv_s0.bias", new long[] {hid / 8});
        m.put(d + "conv_s1.weight", new long[] {hid / 4, hid, 1, 1});
        m.put(d + "conv_s1.bias", new long[] {hid / 4});
        for (int i = 0; i < Sam2Config.MASK_TOKENS; i++) {
            mlp3(m, d + "output_hypernetworks_mlps." + i, hid, hid, hid / 8);
        }
        mlp3(m, d + "iou_prediction_head", hid, c.iouHidden(), Sam2Config.MASK_TOKENS);
        mlp3(m, d + "pred_obj_score_head", hid, hid, 1);
        m.put("no_mem_embed", new long[] {1, 1, hid});
        return m;
    }

    private static void norm(Map<String, long[]> m, String name, long dim) {
        m.put(name + ".weight", new long[] {dim});
        m.put(name + ".bias", new long[] {dim});
    }

    private static void linear(Map<String, long[]> m, String name, long out, long in) {
        m.put(name + ".weight", new long[] {out, in});
        m.put(name + ".bias", new long[] {out});
    }

    private static void attention(Map<String, long[]> m, String name, long dim, long internal) {
        linear(m, name + ".q_proj", internal, dim);
        linear(m, name + ".k_proj", internal, dim);
        linear(m, name + ".v_proj", internal, dim);
        linear(m, name + ".out_proj", dim, internal);
    }

    private static void mlp3(Map<String, long[]> m, String name, long in, long hidden, long out) {
        linear(m, name + ".layers.0", hidden, in);
        linear(m, name + ".layers.1", hidden, hidden);
        linear(m, name + ".layers.2", out, hidden);
    }

    /** True for keys of SAM2 parts the image path deliberately does not load. */
    static boolean isIgnored(String name) {
        return IGNORED_KEYS.contains(name) || IGNORED_PREFIXES.stream().anyMatch(name::startsWith);
    }

    /** Opens {@code fileOrDir} (a .safetensors file or a checkpoint folder, see {@link Checkpoint}) and loads. */
    public static Sam2Weights load(Path fileOrDir, Sam2Config config, String prefix, ScalarType dtype, Device device)
            throws IOException {
        try (Checkpoint ck = Checkpoint.open(fileOrDir)) {
            return load(ck, config, prefix, dtype, device);
        }
    }

    /**
     * Loads the image path from {@code ck}: keys {@code prefix + name}. {@code dtype}: float32 or bfloat16 (float16
     * works too); {@code device}: where the model runs.
     */
    public static Sam2Weights load(Checkpoint ck, Sam2Config config, String prefix, ScalarType dtype, Device device)
            throws IOException {
        if (prefix == null) {
            throw new IllegalArgumentException("prefix: null (use Sam2Weights.ORIGINAL_PREFIX for none)");
        }
        checkDtype(dtype);
        Map<String, long[]> expected = expectedShapes(config);
        List<String> problems = new ArrayList<>();
        for (var e : expected.entrySet()) {
            String key = prefix + e.getKey();
            long[] found = ck.shape(key);
            if (found == null) {
                problems.add("missing tensor '" + key + "' (expected shape " + Arrays.toString(e.getValue()) + ")");
            } else if (!Arrays.equals(found, e.getValue())) {
                problems.add("tensor '" + key + "' has shape " + Arrays.toString(found) + ", expected "
                        + Arrays.toString(e.getValue()));
            }
        }
        List<String> ignored = new ArrayList<>();
        for (String key : ck.keys()) {
            if (!key.startsWith(prefix)) {
                continue;
            }
            String name = key.substring(prefix.length());
            if (expected.containsKey(name)) {
                continue;
            }
            if (isIgnored(name)) {
                ignored.add(key);
            } else if (!prefix.isEmpty() || OWNED_PREFIXES.stream().anyMatch(name::startsWith)) {
                // behind a prefix every key is SAM2's; without one, only the image-path modules are ours to judge
                problems.add("unexpected tensor '" + key + "' with shape " + Arrays.toString(ck.shape(key))
                        + ": not part of the SAM2 image path of this configuration");
            }
        }
        if (!problems.isEmpty() && expected.keySet().stream().noneMatch(k -> ck.contains(prefix + k))) {
            String anchor = "image_encoder.trunk.patch_embed.proj.weight";
            String found = ck.keys().stream().filter(k -> k.endsWith(anchor)).findFirst()
                    .map(k -> "'" + k.substring(0, k.length() - anchor.length()) + "'").orElse("none");
            problems.add(0, "no SAM2 image-path tensor under prefix '" + prefix + "' (prefix found in the checkpoint: "
                    + found + ")");
        }
        if (!problems.isEmpty()) {
            int shown = Math.min(problems.size(), 12);
            throw new IOException(ck.source() + ": SAM2 weights (prefix '" + prefix + "') do not match " + config + ": "
                    + problems.size() + " problem(s):\n  " + String.join("\n  ", problems.subList(0, shown))
                    + (shown < problems.size() ? "\n  ... and " + (problems.size() - shown) + " more" : ""));
        }
        Map<String, Tensor> out = new LinkedHashMap<>();
        try (PointerScope scope = new PointerScope()) {
            for (var e : expected.entrySet()) {
                ScalarType st = FP32_KEYS.contains(e.getKey()) ? ScalarType.Float : dtype;
                Tensor t = ck.load(prefix + e.getKey(), e.getValue(), st, device);
                t.retainReference();
                out.put(e.getKey(), t);
            }
        }
        Collections.sort(ignored);
        return new Sam2Weights(config, dtype, device, out, ignored);
    }

    /**
     * Random weights (for benchmarks and tests that need no reference values): linear / conv weights N(0, 1/fan_in),
     * biases N(0, 0.1^2), norms 1 + N(0, 0.1^2) and N(0, 0.1^2), embeddings N(0, 1), from torch's generator seeded
     * with {@code seed}.
     */
    public static Sam2Weights random(Sam2Config config, long seed, ScalarType dtype, Device device) {
        checkDtype(dtype);
        Torch.seed(seed);
        Map<String, Tensor> out = new LinkedHashMap<>();
        try (PointerScope scope = new PointerScope()) {
            for (var e : expectedShapes(config).entrySet()) {
                String n = e.getKey();
                long[] s = e.getValue();
                Tensor r = Torch.randn(ScalarType.Float, Devices.cpu(), s);
                double std;
                double mean = 0;
                if (n.endsWith(".bias")) {
                    std = 0.1;
                } else if (s.length == 1) {
                    std = 0.1;
                    mean = 1;
                } else if (n.contains("output_upscaling")) {
                    std = 1 / Math.sqrt(s[0]);
                } else if (n.endsWith("_token.weight") || n.endsWith("tokens.weight") || n.contains("embed")
                        || n.contains("gaussian")) {
                    std = n.contains("pos_embed") || n.equals("no_mem_embed") ? 0.5 : 1.0;
                } else {
                    long fanIn = 1;
                    for (int i = 1; i < s.length; i++) {
                        fanIn *= s[i];
                    }
                    std = 1 / Math.sqrt(fanIn);
                }
                ScalarType st = FP32_KEYS.contains(n) ? ScalarType.Float : dtype;
                Tensor t = r.mul(Torch.scalar(std)).add(Torch.scalar(mean)).to(device, st);
                t.retainReference();
                out.put(n, t);
            }
        }
        return new Sam2Weights(config, dtype, device, out, List.of());
    }

    private static void checkDtype(ScalarType dtype) {
        if (dtype != ScalarType.Float && dtype != ScalarType.BFloat16 && dtype != ScalarType.Half) {
            throw new IllegalArgumentException("dtype: " + (dtype == null ? "null" : TensorCheck.dtypeName(dtype))
                    + " not supported for SAM2, expected float32, bfloat16 or float16");
        }
    }

    /**
     * Registers a tensor derived from the weights (a precomputed encoding, a reshaped view) to live as long as the
     * weights: taken out of the caller's scope and released by {@link #close()}.
     */
    synchronized <T extends Pointer> T keep(T p) {
        derived.add(Scoped.own(p));
        return p;
    }

    /**
     * Releases the native memory of the weights and of everything registered with {@link #keep} now, instead of
     * whenever the GC notices; the weights (and models built on them) must not be used afterwards.
     */
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Pointer p : derived) {
            p.releaseReference();
        }
        derived.clear();
        for (Tensor t : tensors.values()) {
            t.releaseReference();
        }
    }

    /** The tensor named {@code name} (original SAM2 name, no prefix). */
    public Tensor get(String name) {
        if (closed) {
            throw new IllegalStateException("SAM2 weights were closed");
        }
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new IllegalStateException("no SAM2 weight '" + name + "' (not an image-path tensor of " + config + ")");
        }
        return t;
    }

    public Map<String, Tensor> all() {
        return tensors;
    }

    /** Keys of the checkpoint (with prefix) that belong to SAM2 parts the image path does not use. */
    public List<String> ignoredKeys() {
        return ignored;
    }

    public Sam2Config config() {
        return config;
    }

    public ScalarType dtype() {
        return dtype;
    }

    public Device device() {
        return device;
    }

    public long parameterCount() {
        long n = 0;
        for (Tensor t : tensors.values()) {
            n += t.numel();
        }
        return n;
    }
}
