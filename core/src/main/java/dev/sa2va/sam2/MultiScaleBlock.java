package dev.sa2va.sam2;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * One Hiera block: LayerNorm → (windowed) multi-scale attention → residual, LayerNorm → MLP (GELU) → residual.
 * At a stage change the residual is max-pool(proj(LN(x))) and the queries are pooled, so the map halves and the
 * width grows. Windows are cut from the zero-padded normalised map (bottom/right), and after query pooling they
 * are reassembled with half the window on the half-size map, then cropped.
 */
final class MultiScaleBlock {
    private final int dimIn, dimOut, window;
    private final boolean queryPool;
    private final Nn.LayerNorm norm1, norm2;
    private final Nn.Linear mlp0, mlp1, proj;
    private final MultiScaleAttention attn;

    MultiScaleBlock(Sam2Config c, Sam2Weights w, int index) {
        String p = "image_encoder.trunk.blocks." + index + ".";
        this.dimIn = c.blockDimIn(index);
        this.dimOut = c.blockDimOut(index);
        this.window = c.blockWindow(index);
        this.queryPool = c.blockQueryPool(index);
        this.norm1 = new Nn.LayerNorm(w, p + "norm1", Sam2Config.HIERA_LN_EPS);
        this.norm2 = new Nn.LayerNorm(w, p + "norm2", Sam2Config.HIERA_LN_EPS);
        this.mlp0 = new Nn.Linear(w, p + "mlp.layers.0");
        this.mlp1 = new Nn.Linear(w, p + "mlp.layers.1");
        this.proj = dimIn != dimOut ? new Nn.Linear(w, p + "proj") : null;
        this.attn = new MultiScaleAttention(w, p + "attn.", dimOut, c.blockHeads(index), queryPool);
    }

    /**
     * x (B, H, W, dimIn) NHWC -> (B, H', W', dimOut). The attention half and the MLP half each run in their own
     * scope, so the attention's intermediates are gone before the 4x-wide MLP activations exist (peak memory).
     */
    Tensor forward(Tensor x) {
        Tensor y = Scoped.tensor(() -> {
            Tensor xn = norm1.apply(x);
            Tensor shortcut = x;
            if (dimIn != dimOut) {
                // the full-resolution projection goes as soon as it is pooled
                shortcut = Scoped.tensor(() -> {
                    Tensor s = proj.apply(xn);
                    return queryPool ? Nn.maxPool2NHWC(s) : s;
                });
            }
            long h = x.size(1), wd = x.size(2);
            Tensor a;
            if (window > 0) {
                long padH = (window - h % window) % window, padW = (window - wd % window) % window;
                Tensor windows = Scoped.tensor(() -> partition(xn, window, padH, padW));
                xn.close(); // the windows are a copy
                Tensor out = attn.forward(windows);
                windows.close();
                int win = queryPool ? window / Sam2Config.Q_STRIDE : window;
                long oh = shortcut.size(1), ow = shortcut.size(2);
                long oPadH = (win - oh % win) % win, oPadW = (win - ow % win) % win;
                a = Scoped.tensor(() -> unpartition(out, win, x.size(0), oh + oPadH, ow + oPadW, oh, ow));
                out.close();
            } else {
                a = attn.forward(xn);
                xn.close();
            }
            return a.add_(shortcut); // a is this block's own tensor: the residual sum needs no new buffer
        });
        Tensor out = Scoped.tensor(() -> {
            // GELU in place on the 4x-wide hidden layer, and the LayerNorm output freed before it is used
            Tensor hidden = Scoped.tensor(() -> mlp0.apply(norm2.apply(y)));
            torch.gelu_(hidden); // returns a non-owning alias of hidden: never let that escape a scope
            return y.add_(mlp1.apply(hidden));
        });
        y.close(); // out is another handle of the same storage: the caller can free it by closing out alone
        return out;
    }

    /** (B, H, W, C) -> (B·nH·nW, win, win, C) after zero padding to multiples of win. */
    static Tensor partition(Tensor x, int win, long padH, long padW) {
        long b = x.size(0), c = x.size(3);
        Tensor p = padH > 0 || padW > 0 ? torch.constant_pad_nd(x,
                new long[] {0, 0, 0, padW, 0, padH}, Nn.s(0)) : x;
        long hp = p.size(1), wp = p.size(2);
        // reshape of the permuted view copies it (clone to contiguous, as contiguous() would) and views the copy:
        // one JavaCPP object instead of two
        return p.view(b, hp / win, win, wp / win, win, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, win, win, c);
    }

    /** Inverse of {@link #partition}: (B·nH·nW, win, win, C) -> (B, h, w, C) cropped from (B, hp, wp, C). */
    static Tensor unpartition(Tensor windows, int win, long b, long hp, long wp, long h, long w) {
        long c = windows.size(3);
        Tensor x = windows.view(b, hp / win, wp / win, win, win, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c);
        if (hp != h || wp != w) {
            x = x.narrow(1, 0, h).narrow(2, 0, w).contiguous();
        }
        return x;
    }
}
