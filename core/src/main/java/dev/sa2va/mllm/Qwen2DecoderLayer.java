package dev.sa2va.mllm;

import java.io.IOException;
import org.bytedeco.pytorch.Tensor;

/** One Qwen2 decoder layer: {@code h = x + attn(rms1(x))}, then {@code h + mlp(rms2(h))}. */
final class Qwen2DecoderLayer implements AutoCloseable {
    private final Nn.RmsNorm inputNorm;
    private final Qwen2Attention attention;
    private final Nn.RmsNorm postAttentionNorm;
    private final Qwen2Mlp mlp;

    private Qwen2DecoderLayer(Nn.RmsNorm inputNorm, Qwen2Attention attention, Nn.RmsNorm postAttentionNorm, Qwen2Mlp mlp) {
        this.inputNorm = inputNorm;
        this.attention = attention;
        this.postAttentionNorm = postAttentionNorm;
        this.mlp = mlp;
    }

    static Qwen2DecoderLayer load(WeightSource w, String p, Sa2vaConfig.Llm c) throws IOException {
        long d = c.hiddenSize();
        return new Qwen2DecoderLayer(new Nn.RmsNorm(w.get(p + "input_layernorm.weight", d), c.rmsNormEps()),
                Qwen2Attention.load(w, p + "self_attn.", c),
                new Nn.RmsNorm(w.get(p + "post_attention_layernorm.weight", d), c.rmsNormEps()),
                Qwen2Mlp.load(w, p + "mlp.", c));
    }

    Tensor forward(Tensor x, RotaryEmbedding rope, Tensor cos, Tensor sinSigned, KvCache cache, int layer) {
        // the attention half and the MLP half each free their intermediates before the next half starts
        try (Scope s = new Scope()) {
            Tensor h;
            try (Scope a = new Scope()) {
                h = a.keep(attention.forward(inputNorm.forward(x), rope, cos, sinSigned, cache, layer).add_(x));
            }
            Tensor m;
            try (Scope a = new Scope()) {
                m = a.keep(mlp.forward(postAttentionNorm.forward(h)));
            }
            return s.keep(h.add_(m));
        }
    }

    @Override
    public void close() {
        inputNorm.close();
        attention.close();
        postAttentionNorm.close();
        mlp.close();
    }
}
