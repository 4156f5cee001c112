package dev.sa2va.sam2;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

/**
 * Hiera's multi-scale attention: one qkv projection to {@code 3 · dimOut}, optional 2×2 max-pooling of the
 * queries (at a stage change, which halves the map), softmax attention per head, output projection. Inputs are
 * windows (or the whole map for global blocks) in NHWC.
 */
final class MultiScaleAttention {
    private final int heads;
    private final int dimOut;
    private final boolean queryPool;
    private final Nn.Linear qkv, proj;

    MultiScaleAttention(Sam2Weights w, String prefix, int dimOut, int heads, boolean queryPool) {
        this.heads = heads;
        this.dimOut = dimOut;
        this.queryPool = queryPool;
        this.qkv = new Nn.Linear(w, prefix + "qkv");
        this.proj = new Nn.Linear(w, prefix + "proj");
    }

    /** x (B, H, W, dim) -> (B, H', W', dimOut), H' = H/2 with query pooling. */
    Tensor forward(Tensor x) {
        long b = x.size(0), h = x.size(1), wd = x.size(2);
        long hd = dimOut / heads;
        // max-pool 2x2, stride 2, floor: the query map halves
        long oh = queryPool ? h / Sam2Config.Q_STRIDE : h, ow = queryPool ? wd / Sam2Config.Q_STRIDE : wd;
        // the 3x-wide qkv projection is freed as soon as the attention output exists (own scope)
        Tensor o = Scoped.tensor(() -> {
            TensorVector parts = qkv.apply(x).reshape(b, h * wd, 3, heads, hd).unbind(2); // each (B, HW, heads, hd)
            Tensor q = parts.get(0), k = parts.get(1), v = parts.get(2);
            if (queryPool) {
                q = Nn.maxPool2NHWC(q.reshape(b, h, wd, dimOut)).reshape(b, oh * ow, heads, hd);
            }
            return Nn.attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)); // (B, heads, N', hd)
        });
        Tensor out = Scoped.tensor(() -> proj.apply(o.transpose(1, 2).reshape(b, oh, ow, dimOut)));
        o.close();
        return out;
    }
}
