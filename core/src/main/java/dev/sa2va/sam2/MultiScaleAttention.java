package dev.sa2va.sam2;

import org.bytedeco.pytorch.Tensor;

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
    private final Nn.Linear q, kv; // with query pooling: the q rows and the k|v rows of qkv

    MultiScaleAttention(Sam2Weights w, String prefix, int dimOut, int heads, boolean queryPool) {
        this.heads = heads;
        this.dimOut = dimOut;
        this.queryPool = queryPool;
        this.qkv = new Nn.Linear(w, prefix + "qkv");
        this.proj = new Nn.Linear(w, prefix + "proj");
        this.q = queryPool ? new Nn.Linear(w, qkv, 0, dimOut) : null;
        this.kv = queryPool ? new Nn.Linear(w, qkv, dimOut, 2L * dimOut) : null;
    }

    /** x (B, H, W, dim) -> (B, H', W', dimOut), H' = H/2 with query pooling. */
    Tensor forward(Tensor x) {
        long b = x.size(0), h = x.size(1), wd = x.size(2);
        long hd = dimOut / heads;
        // max-pool 2x2, stride 2, floor: the query map halves
        long oh = queryPool ? h / Sam2Config.Q_STRIDE : h, ow = queryPool ? wd / Sam2Config.Q_STRIDE : wd;
        Tensor o;
        if (queryPool) {
            // at a stage change the map is still the previous stage's size: q is projected on its own (a contiguous
            // map that max-pools without a copy) and pooled before k|v exist, instead of slicing a 3x-wide qkv map
            // (which max_pool2d would first copy): the peak of these blocks drops from ~12 to ~7 input-sized maps
            Tensor pooled = Scoped.tensor(() -> Nn.maxPool2NHWC(q.apply(x)).reshape(b, oh * ow, heads, hd));
            o = Scoped.tensor(() -> {
                Tensor kvHeads = Nn.splitHeads(kv.apply(x), b, h * wd, 2, heads, hd);
                return Nn.attention(pooled.transpose(1, 2), kvHeads.select(0, 0), kvHeads.select(0, 1));
            });
            pooled.close();
        } else {
            // the 3x-wide qkv projection is freed as soon as the attention output exists (own scope)
            o = Scoped.tensor(() -> {
                Tensor qkvHeads = Nn.splitHeads(qkv.apply(x), b, h * wd, 3, heads, hd);
                // (B, heads, N', hd)
                return Nn.attention(qkvHeads.select(0, 0), qkvHeads.select(0, 1), qkvHeads.select(0, 2));
            });
        }
        Tensor out = Scoped.tensor(() -> proj.apply(o.transpose(1, 2).reshape(b, oh, ow, dimOut)));
        o.close();
        return out;
    }
}
