package dev.sa2va.mllm;

import dev.sa2va.core.TensorCheck;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Qwen2 decoder (Qwen2ForCausalLM): token embeddings, decoder layers with RoPE, final RMSNorm, and the LM head
 * (tied to the embeddings when the checkpoint stores no {@code lm_head}). Positions continue from the KV cache's
 * length, so a prompt can be prefilled and then extended one token at a time.
 */
public final class Qwen2Model implements AutoCloseable {
    private final Sa2vaConfig.Llm cfg;
    private final Tensor embedTokens;
    private final List<Qwen2DecoderLayer> layers;
    private final Nn.RmsNorm norm;
    private final Nn.Linear lmHead;
    private final boolean tied;
    private final RotaryEmbedding rope;

    private Qwen2Model(Sa2vaConfig.Llm cfg, Tensor embedTokens, List<Qwen2DecoderLayer> layers, Nn.RmsNorm norm,
                       Nn.Linear lmHead, boolean tied, RotaryEmbedding rope) {
        this.cfg = cfg;
        this.embedTokens = Scope.pin(embedTokens);
        this.layers = layers;
        this.norm = norm;
        this.lmHead = lmHead;
        this.tied = tied;
        this.rope = rope;
    }

    /**
     * Loads {@code prefix}model.* and {@code prefix}lm_head.weight ({@code vocab} rows, from the checkpoint's embedding
     * shape). Without a stored lm_head the embedding matrix is used (tied), which the config must allow.
     */
    static Qwen2Model load(WeightSource w, String prefix, Sa2vaConfig.Llm c, long vocab, String file) throws IOException {
        long d = c.hiddenSize();
        Tensor embed = w.get(prefix + "model.embed_tokens.weight", vocab, d);
        List<Qwen2DecoderLayer> ls = new ArrayList<>();
        for (int i = 0; i < c.numLayers(); i++) {
            ls.add(Qwen2DecoderLayer.load(w, prefix + "model.layers." + i + ".", c));
        }
        Nn.RmsNorm norm = new Nn.RmsNorm(w.get(prefix + "model.norm.weight", d), c.rmsNormEps());
        String headKey = prefix + "lm_head.weight";
        boolean tied = !w.has(headKey);
        if (tied && !c.tieWordEmbeddings()) {
            throw new IOException(file + ": missing tensor '" + headKey + "' and llm_config.tie_word_embeddings is false");
        }
        Nn.Linear head = new Nn.Linear(tied ? embed : w.get(headKey, vocab, d), null);
        return new Qwen2Model(c, embed, List.copyOf(ls), norm, head, tied,
                new RotaryEmbedding(c.headDim(), c.ropeTheta(), w.dtype(), w.device()));
    }

    public Sa2vaConfig.Llm config() {
        return cfg;
    }

    public long vocabSize() {
        return embedTokens.size(0);
    }

    public boolean tiedLmHead() {
        return tied;
    }

    public ScalarType dtype() {
        return embedTokens.scalar_type().intern();
    }

    /** A cache for this model: batch × capacity positions, in the model's dtype and device. */
    public KvCache newCache(long batch, long capacity) {
        return new KvCache(cfg.numLayers(), batch, cfg.numKvHeads(), cfg.headDim(), capacity, dtype(),
                embedTokens.device());
    }

    /** Token embeddings of {@code ids [B, L]} (int64) → {@code [B, L, C]}. */
    public Tensor embed(Tensor ids) {
        TensorCheck.of("ids", ids).dtype(ScalarType.Long).sameDevice("embeddings", embedTokens);
        try (NoGradGuard g = new NoGradGuard()) {
            return torch.embedding(embedTokens, ids);
        }
    }

    /**
     * Runs the decoder on {@code inputsEmbeds [B, L, C]} and returns the final-normed hidden states {@code [B, L, C]}
     * (the input of the LM head, Sa2VA's {@code hidden_states[-1]}). With a cache, the positions continue from its
     * length and the new keys/values are appended; without, the sequence starts at position 0. Probe names:
     * "llm.layer.N" (layer outputs before the final norm), "llm.final_norm".
     */
    public Tensor forward(Tensor inputsEmbeds, KvCache cache, Probe probe) {
        TensorCheck.of("inputsEmbeds", inputsEmbeds).dims(3).sameDevice("embeddings", embedTokens);
        Nn.checkWidth("inputsEmbeds", inputsEmbeds, cfg.hiddenSize());
        long l = inputsEmbeds.size(1);
        if (cache != null) {
            cache.checkRoom(l);
            if (cache.batch() != inputsEmbeds.size(0)) {
                throw new IllegalArgumentException("inputsEmbeds: batch " + inputsEmbeds.size(0) + " but the cache holds "
                        + cache.batch());
            }
        }
        long start = cache == null ? 0 : cache.length();
        try (NoGradGuard g = new NoGradGuard(); Scope s = new Scope()) {
            Tensor[] cs = rope.table(start, l);
            Tensor x = inputsEmbeds.scalar_type().intern() == dtype() ? inputsEmbeds : inputsEmbeds.to(dtype());
            for (int i = 0; i < layers.size(); i++) {
                Tensor next = layers.get(i).forward(x, rope, cs[0], cs[1], cache, i);
                if (x != inputsEmbeds) {
                    x.close();
                }
                x = next;
                probe.accept("llm.layer." + i, x);
            }
            if (cache != null) {
                cache.advance(l);
            }
            Tensor out = norm.forward(x);
            probe.accept("llm.final_norm", out);
            return s.keep(out);
        }
    }

    /** LM head: hidden {@code [..., C]} → logits {@code [..., vocab]} (in the model's dtype). */
    public Tensor logits(Tensor hidden) {
        Nn.checkWidth("hidden", hidden, cfg.hiddenSize());
        try (NoGradGuard g = new NoGradGuard()) {
            return lmHead.forward(hidden);
        }
    }

    RotaryEmbedding rope() {
        return rope;
    }

    @Override
    public void close() {
        layers.forEach(Qwen2DecoderLayer::close);
        norm.close();
        lmHead.close();
        embedTokens.close();
        rope.close();
    }
}
