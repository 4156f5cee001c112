package dev.sa2va.mllm;

import dev.sa2va.core.Torch;
import java.io.IOException;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Qwen2 self-attention: q/k/v projections with bias (fused here into one GEMM: rows q | k | v), RoPE on q and k,
 * grouped-query attention (each of the {@code kvHeads} key/value heads serves heads/kvHeads query heads, through
 * scaled_dot_product_attention's enable_gqa), causal, scale head_dim^−½, then o_proj without bias.
 */
final class Qwen2Attention implements AutoCloseable {
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final Nn.Linear qkv;
    private final Nn.Linear o;
    private final TensorOptional noMask = Scope.pin(new TensorOptional());
    private final DoubleOptional noScale = Scope.pin(new DoubleOptional());

    private Qwen2Attention(int heads, int kvHeads, int headDim, Nn.Linear qkv, Nn.Linear o) {
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.qkv = qkv;
        this.o = o;
    }

    static Qwen2Attention load(WeightSource w, String p, Sa2vaConfig.Llm c) throws IOException {
        long d = c.hiddenSize(), hd = c.headDim(), q = c.numHeads() * hd, kv = c.numKvHeads() * hd;
        try (Scope s = new Scope()) {
            Tensor wq = w.get(p + "q_proj.weight", q, d), wk = w.get(p + "k_proj.weight", kv, d);
            Tensor wv = w.get(p + "v_proj.weight", kv, d);
            Tensor bq = w.get(p + "q_proj.bias", q), bk = w.get(p + "k_proj.bias", kv), bv = w.get(p + "v_proj.bias", kv);
            Nn.Linear fused = new Nn.Linear(torch.cat(new TensorVector(wq, wk, wv), 0), torch.cat(new TensorVector(bq, bk, bv), 0));
            Nn.Linear out = new Nn.Linear(w.get(p + "o_proj.weight", d, q), null);
            return new Qwen2Attention(c.numHeads(), c.numKvHeads(), c.headDim(), fused, out);
        }
    }

    /**
     * {@code x [B, L, C]} at positions {@code [start, start + L)} (cos/sin rows given), with the layer's cache
     * (null: no cache, attention over x only) → {@code [B, L, C]}.
     */
    Tensor forward(Tensor x, RotaryEmbedding rope, Tensor cos, Tensor sinSigned, KvCache cache, int layer) {
        long b = x.size(0), l = x.size(1);
        Tensor proj = qkv.forward(x).view(b, l, heads + 2L * kvHeads, headDim).transpose(1, 2);
        Tensor qk = rope.apply(proj.narrow(1, 0, heads + (long) kvHeads), cos, sinSigned);
        Tensor q = qk.narrow(1, 0, heads);
        Tensor k = qk.narrow(1, heads, kvHeads);
        Tensor v = proj.narrow(1, heads + (long) kvHeads, kvHeads);
        long start = cache == null ? 0 : cache.length();
        if (cache != null) {
            Tensor[] kv = cache.write(layer, k, v);
            k = kv[0];
            v = kv[1];
        }
        Tensor a;
        if (start == 0 || l == 1) {
            // a fresh sequence is plainly causal; one new token sees every cached position
            a = torch.scaled_dot_product_attention(q, k, v, noMask, 0.0, start == 0 && l > 1, noScale, true);
        } else {
            // a chunk after cached positions: row i sees keys 0 .. start + i
            Tensor rows = torch.arange(new Scalar(l), Torch.options(ScalarType.Long, x.device())).unsqueeze(1)
                    .add(Torch.scalar(start));
            Tensor cols = torch.arange(new Scalar(start + l), Torch.options(ScalarType.Long, x.device())).unsqueeze(0);
            Tensor mask = cols.le(rows);
            a = torch.scaled_dot_product_attention(q, k, v, new TensorOptional(mask), 0.0, false, noScale, true);
        }
        return o.forward(a.transpose(1, 2).reshape(b, l, (long) heads * headDim));
    }

    @Override
    public void close() {
        qkv.close();
        o.close();
        noMask.close();
        noScale.close();
    }
}
