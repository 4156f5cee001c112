package dev.sa2va.mllm;

import dev.sa2va.core.JavaCppDefaults;
import dev.sa2va.io.Checkpoint;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Builds a {@link Sa2vaMllm} from a Sa2VA model folder ({@code config.json} + {@code model.safetensors} or shards
 * with {@code model.safetensors.index.json}): {@code vision_model.*}, {@code mlp1.*}, {@code language_model.*},
 * {@code text_hidden_fcs.*}; SAM2's {@code grounding_encoder.*} is left alone. Tensors are cast to the compute
 * dtype as they are read (fp32 or bf16 storage alike). The vocabulary size is the checkpoint's embedding
 * height (Sa2VA resizes it to its tokenizer). A missing or mis-shaped tensor, a truncated shard or a corrupt
 * header is an IOException naming the file and the key; so is a stored tensor under those prefixes that the
 * model would not use (it would otherwise be silently ignored).
 */
public final class MllmWeights {
    static {
        JavaCppDefaults.apply(); // before any JavaCPP class initialises (see JavaCppDefaults)
    }

    static final String VISION = "vision_model.";
    static final String PROJECTOR = "mlp1.";
    static final String LLM = "language_model.";
    static final String SEG = "text_hidden_fcs.";

    private MllmWeights() {
    }

    /** Loads the MLLM of the model folder {@code dir} in {@code dtype} (Float or BFloat16) on {@code device}. */
    public static Sa2vaMllm load(Path dir, ScalarType dtype, Device device) throws IOException {
        checkDtype(dtype);
        Sa2vaConfig cfg = Sa2vaConfig.read(dir);
        try (Checkpoint ck = Checkpoint.open(dir)) {
            String embedKey = LLM + "model.embed_tokens.weight";
            long[] es = ck.shape(embedKey);
            if (es == null) {
                throw new IOException(dir + ": missing tensor '" + embedKey + "' (the vocabulary size is read from it)");
            }
            if (es.length != 2 || es[1] != cfg.llm().hiddenSize()) {
                throw new IOException(dir + ": tensor '" + embedKey + "' has shape " + java.util.Arrays.toString(es)
                        + ", expected [vocab, " + cfg.llm().hiddenSize() + "]");
            }
            Sa2vaMllm m = build(WeightSource.of(ck, dtype, device), cfg, es[0], dir.toString());
            List<String> unused = new ArrayList<>();
            int usedVisionLayers = cfg.vision().numLayers() + 1 + cfg.selectLayer();
            for (String prefix : new String[] {VISION, PROJECTOR, LLM, SEG}) {
                for (String k : ck.unusedKeys(prefix)) {
                    if (k.endsWith("rotary_emb.inv_freq") || beyondSelectedLayer(k, usedVisionLayers)) {
                        continue;  // recomputed from the config / not part of the selected feature layer
                    }
                    unused.add(k);
                }
            }
            if (!unused.isEmpty()) {
                m.close();
                throw new IOException(dir + ": tensors the MLLM does not use (architecture mismatch?): "
                        + (unused.size() > 12 ? unused.subList(0, 12) + " ... (" + unused.size() + " in all)" : unused));
            }
            return m;
        }
    }

    /**
     * Random weights (seeded; scale as {@link WeightSource#random}) at the dimensions of {@code cfg}, for tests and
     * benchmarks at real sizes. The LM head is tied when the config says so.
     */
    public static Sa2vaMllm random(Sa2vaConfig cfg, long vocab, long seed, ScalarType dtype, Device device) {
        checkDtype(dtype);
        try {
            java.util.Set<String> absent = cfg.llm().tieWordEmbeddings() ? java.util.Set.of(LLM + "lm_head.weight")
                    : java.util.Set.of();
            return build(WeightSource.random(seed, dtype, device, absent), cfg, vocab, "random");
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Sa2vaMllm build(WeightSource w, Sa2vaConfig cfg, long vocab, String where) throws IOException {
        List<AutoCloseable> built = new ArrayList<>();
        try (Scope s = new Scope()) {
            InternVisionModel vision = InternVisionModel.load(w, VISION, cfg.vision(), cfg.selectLayer());
            built.add(vision);
            MlpProjector proj = MlpProjector.load(w, PROJECTOR, cfg.vision().hiddenSize(), cfg.llm().hiddenSize());
            built.add(proj);
            Qwen2Model llm = Qwen2Model.load(w, LLM, cfg.llm(), vocab, where);
            built.add(llm);
            SegTokens seg = SegTokens.load(w, SEG, cfg.llm().hiddenSize());
            return new Sa2vaMllm(cfg, vision, proj, llm, seg, w.dtype(), w.device());
        } catch (IOException | RuntimeException e) {
            for (AutoCloseable c : built) {
                try {
                    c.close();
                } catch (Exception ignored) {
                    // the load error is the one to report
                }
            }
            throw e;
        }
    }

    private static boolean beyondSelectedLayer(String key, int usedLayers) {
        String p = VISION + "encoder.layers.";
        if (!key.startsWith(p)) {
            return false;
        }
        String rest = key.substring(p.length());
        int dot = rest.indexOf('.');
        try {
            return dot > 0 && Integer.parseInt(rest.substring(0, dot)) >= usedLayers;
        } catch (NumberFormatException e) {
            return false;
        }
    }

    private static void checkDtype(ScalarType dtype) {
        if (dtype != ScalarType.Float && dtype != ScalarType.BFloat16) {
            throw new IllegalArgumentException("dtype must be Float or BFloat16, got " + dtype);
        }
    }
}
