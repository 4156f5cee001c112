package dev.sa2va.sam2;

import org.bytedeco.pytorch.Tensor;

/**
 * SAM's attention layer of the mask decoder: q/k/v projections to an internal width (hidden / downsample rate),
 * softmax attention per head, output projection back to the hidden width.
 */
final class DecoderAttention {
    private final int heads;
    private final Nn.Linear q, k, v, out;

    DecoderAttention(Sam2Weights w, String prefix, int heads) {
        this.heads = heads;
        this.q = new Nn.Linear(w, prefix + "q_proj");
        this.k = new Nn.Linear(w, prefix + "k_proj");
        this.v = new Nn.Linear(w, prefix + "v_proj");
        this.out = new Nn.Linear(w, prefix + "out_proj");
    }

    /** query (B, Nq, C), key and value (B, Nk, C) -> (B, Nq, C). */
    Tensor forward(Tensor query, Tensor key, Tensor value) {
        return Scoped.tensor(() -> {
            Tensor o = Nn.attention(split(q.apply(query)), split(k.apply(key)), split(v.apply(value))); // (B, h, Nq, d)
            long b = o.size(0), n = o.size(2);
            return out.apply(o.transpose(1, 2).reshape(b, n, -1));
        });
    }

    /** (B, N, heads·d) -> (B, heads, N, d). */
    private Tensor split(Tensor x) {
        return x.view(x.size(0), x.size(1), heads, -1).transpose(1, 2);
    }
}
