package dev.sa2va.mllm;

import java.io.IOException;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * One pre-norm InternViT block: {@code x + ls1 · attn(norm1(x))}, then {@code x + ls2 · mlp(norm2(x))}, where the
 * attention has a fused {@code qkv} projection with bias (rows q | k | v, heads × head_dim each), softmax scale
 * head_dim^−½ (through libtorch's scaled_dot_product_attention), and the MLP is fc1 → exact GELU → fc2.
 */
final class InternVisionEncoderLayer implements AutoCloseable {
    private final int heads;
    private final Nn.LayerNorm norm1;
    private final Nn.Linear qkv;
    private final Nn.Linear proj;
    private final Tensor ls1;
    private final Nn.LayerNorm norm2;
    private final Nn.Linear fc1;
    private final Nn.Linear fc2;
    private final Tensor ls2;

    private InternVisionEncoderLayer(int heads, Nn.LayerNorm norm1, Nn.Linear qkv, Nn.Linear proj, Tensor ls1,
                                     Nn.LayerNorm norm2, Nn.Linear fc1, Nn.Linear fc2, Tensor ls2) {
        this.heads = heads;
        this.norm1 = norm1;
        this.qkv = qkv;
        this.proj = proj;
        this.ls1 = Scope.pin(ls1);
        this.norm2 = norm2;
        this.fc1 = fc1;
        this.fc2 = fc2;
        this.ls2 = Scope.pin(ls2);
    }

    static InternVisionEncoderLayer load(WeightSource w, String p, Sa2vaConfig.Vision c) throws IOException {
        long d = c.hiddenSize(), m = c.intermediateSize();
        double eps = c.layerNormEps();
        return new InternVisionEncoderLayer(c.numHeads(),
                new Nn.LayerNorm(w.get(p + "norm1.weight", d), w.get(p + "norm1.bias", d), eps),
                new Nn.Linear(w.get(p + "attn.qkv.weight", 3 * d, d), c.qkvBias() ? w.get(p + "attn.qkv.bias", 3 * d) : null),
                new Nn.Linear(w.get(p + "attn.proj.weight", d, d), w.get(p + "attn.proj.bias", d)),
                w.get(p + "ls1", d),
                new Nn.LayerNorm(w.get(p + "norm2.weight", d), w.get(p + "norm2.bias", d), eps),
                new Nn.Linear(w.get(p + "mlp.fc1.weight", m, d), w.get(p + "mlp.fc1.bias", m)),
                new Nn.Linear(w.get(p + "mlp.fc2.weight", d, m), w.get(p + "mlp.fc2.bias", d)),
                w.get(p + "ls2", d));
    }

    /** {@code x [T, N, C]} → {@code [T, N, C]}. */
    Tensor forward(Tensor x) {
        try (Scope s = new Scope()) {
            long t = x.size(0), n = x.size(1), c = x.size(2);
            Tensor qkvOut = qkv.forward(norm1.forward(x)).view(t, n, 3, heads, c / heads).permute(2, 0, 3, 1, 4);
            Tensor a = torch.scaled_dot_product_attention(qkvOut.select(0, 0), qkvOut.select(0, 1), qkvOut.select(0, 2));
            a = proj.forward(a.transpose(1, 2).reshape(t, n, c));
            Tensor h = x.add(a.mul(ls1));
            Tensor m = fc2.forward(torch.gelu(fc1.forward(norm2.forward(h))));
            return s.keep(h.add(m.mul(ls2)));
        }
    }

    @Override
    public void close() {
        norm1.close();
        qkv.close();
        proj.close();
        ls1.close();
        norm2.close();
        fc1.close();
        fc2.close();
        ls2.close();
    }
}
