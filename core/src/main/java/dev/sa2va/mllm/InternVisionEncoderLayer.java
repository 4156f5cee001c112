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

    /**
     * {@code x [T, N, C]} → {@code [T, N, C]}. Each intermediate is freed as soon as the next one exists (nested
     * scopes), and the residual and layer-scale products run in place on tensors this layer owns, with the same
     * values as {@code x + ls·f(x)} out of place. At 10 tiles a [T, N, C] tensor is 21 MB and the MLP's hidden
     * layer 84 MB: left to one scope, the ~13 intermediates of a layer held ~0.5 GB at once.
     */
    Tensor forward(Tensor x) {
        long t = x.size(0), n = x.size(1), c = x.size(2);
        try (Scope s = new Scope()) {
            Tensor attn;
            try (Scope a = new Scope()) {
                Tensor qkvOut;
                try (Scope b = new Scope()) {
                    qkvOut = b.keep(qkv.forward(norm1.forward(x)));
                }
                Tensor p = qkvOut.view(t, n, 3, heads, c / heads).permute(2, 0, 3, 1, 4);
                attn = a.keep(torch.scaled_dot_product_attention(p.select(0, 0), p.select(0, 1), p.select(0, 2)));
            }
            Tensor merged;
            try (Scope a = new Scope()) {
                merged = a.keep(attn.transpose(1, 2).reshape(t, n, c));
            }
            attn.close();
            Tensor h;
            try (Scope a = new Scope()) {
                h = a.keep(proj.forward(merged).mul_(ls1).add_(x));
            }
            merged.close();
            Tensor hidden;
            try (Scope a = new Scope()) {
                hidden = a.keep(fc1.forward(norm2.forward(h)));
            }
            // static in-place functions return a non-owning alias of their argument: keep using `hidden`
            torch.gelu_(hidden);
            Tensor out;
            try (Scope a = new Scope()) {
                out = a.keep(fc2.forward(hidden));
            }
            hidden.close();
            return s.keep(out.mul_(ls2).add_(h));
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
