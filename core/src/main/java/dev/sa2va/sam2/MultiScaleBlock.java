package dev.sa2va.sam2;

import org.bytedeco.pytorch.Tensor;

/**
 * One Hiera block: LayerNorm → (windowed) multi-scale attention → residual, LayerNorm → MLP (GELU) → residual.
 * At a stage change the residual is max-pool(proj(LN(x))) and the queries are pooled, so the map halves and the
 * width grows. Windows are cut from the zero-padded normalised map (bottom/right), and after query pooling they
 * are reassembled with half the window on the half-size map, then cropped.
 */
final class MultiScaleBlock {
    private final int dimIn, dimOut, window;
    private final boolean queryPool;
    private final Tensor norm1W, norm1B, norm2W, norm2B, mlp0W, mlp0B, mlp1W, mlp1B, projW, projB;
    private final MultiScaleAttention attn;

    MultiScaleBlock(Sam2Config c, Sam2Weights w, int index) {
        String p = "image_encoder.trunk.blocks." + index + ".";
        this.dimIn = c.blockDimIn(index);
        this.dimOut = c.blockDimOut(index);
        this.window = c.blockWindow(index);
        this.queryPool = c.blockQueryPool(index);
        this.norm1W = w.get(p + "norm1.weight");
        this.norm1B = w.get(p + "norm1.bias");
        this.norm2W = w.get(p + "norm2.weight");
        this.norm2B = w.get(p + "norm2.bias");
        this.mlp0W = w.get(p + "mlp.layers.0.weight");
        this.mlp0B = w.get(p + "mlp.layers.0.bias");
        this.mlp1W = w.get(p + "mlp.layers.1.weight");
        this.mlp1B = w.get(p + "mlp.layers.1.bias");
        this.projW = dimIn != dimOut ? w.get(p + "proj.weight") : null;
        this.projB = dimIn != dimOut ? w.get(p + "proj.bias") : null;
        this.attn = new MultiScaleAttention(w, p + "attn.", dimOut, c.blockHeads(index), queryPool);
    }

    /** x (B, H, W, dimIn) NHWC -> (B, H', W', dimOut). Intermediates are freed before returning. */
    Tensor forward(Tensor x) {
        return Scoped.tensor(() -> {
            Tensor shortcut = x;
            Tensor xn = Nn.layerNorm(x, norm1W, norm1B, Sam2Config.HIERA_LN_EPS);
            if (dimIn != dimOut) {
                shortcut = Nn.linear(xn, projW, projB);
                if (queryPool) {
                    shortcut = Nn.maxPool2NHWC(shortcut);
                }
            }
            long h = x.size(1), wd = x.size(2);
            Tensor a;
            if (window > 0) {
                long padH = (window - h % window) % window, padW = (window - wd % window) % window;
                Tensor windows = partition(xn, window, padH, padW);
                Tensor out = attn.forward(windows);
                int win = queryPool ? window / Sam2Config.Q_STRIDE : window;
                long oh = shortcut.size(1), ow = shortcut.size(2);
                long oPadH = (win - oh % win) % win, oPadW = (win - ow % win) % win;
                a = unpartition(out, win, x.size(0), oh + oPadH, ow + oPadW, oh, ow);
            } else {
                a = attn.forward(xn);
            }
            Tensor y = shortcut.add(a);
            Tensor m = Nn.linear(Nn.gelu(Nn.linear(Nn.layerNorm(y, norm2W, norm2B, Sam2Config.HIERA_LN_EPS), mlp0W,
                    mlp0B)), mlp1W, mlp1B);
            return y.add(m);
        });
    }

    /** (B, H, W, C) -> (B·nH·nW, win, win, C) after zero padding to multiples of win. */
    static Tensor partition(Tensor x, int win, long padH, long padW) {
        long b = x.size(0), c = x.size(3);
        Tensor p = padH > 0 || padW > 0 ? org.bytedeco.pytorch.global.torch.constant_pad_nd(x,
                new long[] {0, 0, 0, padW, 0, padH}, Nn.s(0)) : x;
        long hp = p.size(1), wp = p.size(2);
        return p.view(b, hp / win, win, wp / win, win, c).permute(0, 1, 3, 2, 4, 5).contiguous()
                .view(-1, win, win, c);
    }

    /** Inverse of {@link #partition}: (B·nH·nW, win, win, C) -> (B, h, w, C) cropped from (B, hp, wp, C). */
    static Tensor unpartition(Tensor windows, int win, long b, long hp, long wp, long h, long w) {
        long c = windows.size(3);
        Tensor x = windows.view(b, hp / win, wp / win, win, win, c).permute(0, 1, 3, 2, 4, 5).contiguous()
                .view(b, hp, wp, c);
        if (hp != h || wp != w) {
            x = x.narrow(1, 0, h).narrow(2, 0, w).contiguous();
        }
        return x;
    }
}
