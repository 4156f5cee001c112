package dev.sa2va.sam2;

import org.bytedeco.pytorch.Tensor;

/**
 * SAM's attention layer of the mask decoder: q/k/v projections to an internal width (hidden / downsample rate),
 * softmax attention per head, output projection back to the hidden width.
 */
final class DecoderAttention {
    private final int heads;
    private final Tensor qW, qB, kW, kB, vW, vB, oW, oB;

    DecoderAttention(Sam2Weights w, String prefix, int heads) {
        this.heads = heads;
        this.qW = w.get(prefix + "q_proj.weight");
        this.qB = w.get(prefix + "q_proj.bias");
        this.kW = w.get(prefix + "k_proj.weight");
        this.kB = w.get(prefix + "k_proj.bias");
        this.vW = w.get(prefix + "v_proj.weight");
        this.vB = w.get(prefix + "v_proj.bias");
        this.oW = w.get(prefix + "out_proj.weight");
        this.oB = w.get(prefix + "out_proj.bias");
    }

    /** q (B, Nq, C), k and v (B, Nk, C) -> (B, Nq, C). */
    Tensor forward(Tensor q, Tensor k, Tensor v) {
        return Scoped.tensor(() -> {
            Tensor qp = split(Nn.linear(q, qW, qB));
            Tensor kp = split(Nn.linear(k, kW, kB));
            Tensor vp = split(Nn.linear(v, vW, vB));
            Tensor o = Nn.attention(qp, kp, vp); // (B, heads, Nq, d)
            long b = o.size(0), n = o.size(2);
            return Nn.linear(o.transpose(1, 2).reshape(b, n, -1), oW, oB);
        });
    }

    /** (B, N, heads·d) -> (B, heads, N, d). */
    private Tensor split(Tensor x) {
        return x.view(x.size(0), x.size(1), heads, -1).transpose(1, 2);
    }
}
