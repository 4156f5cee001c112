package dev.sa2va.sam2;

import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/**
 * Short forms of the libtorch functional ops used by the SAM2 modules. Layers keep their optional-tensor
 * arguments ({@link TensorOptional} of a bias) built once: each JNI allocation of such a wrapper costs a few
 * microseconds, and a SAM2-L forward pass makes over a thousand of these calls.
 */
final class Nn {
    private Nn() {
    }

    private static final TensorOptional NO_MASK = Scoped.own(new TensorOptional());
    private static final DoubleOptional DEFAULT_SCALE = Scoped.own(new DoubleOptional());
    private static final long[] ONE = {1, 1}, TWO = {2, 2}, ZERO = {0, 0};

    /** y = x Wᵀ + b. */
    static final class Linear {
        final Tensor weight;
        final TensorOptional bias;

        Linear(Sam2Weights w, String prefix) {
            this.weight = w.get(prefix + ".weight");
            this.bias = w.keep(new TensorOptional(w.get(prefix + ".bias")));
        }

        /** Output rows [from, from + n) of another layer (views of its weight and bias, no copy). */
        Linear(Sam2Weights w, Linear of, long from, long n) {
            this.weight = w.keep(of.weight.narrow(0, from, n));
            this.bias = w.keep(new TensorOptional(w.keep(of.bias.get().narrow(0, from, n))));
        }

        Tensor apply(Tensor x) {
            return torch.linear(x, weight, bias);
        }
    }

    /** LayerNorm over the last dimension. */
    static final class LayerNorm {
        final TensorOptional weight, bias;
        final long[] shape;
        final double eps;

        LayerNorm(Sam2Weights w, String prefix, double eps) {
            Tensor wt = w.get(prefix + ".weight");
            this.weight = w.keep(new TensorOptional(wt));
            this.bias = w.keep(new TensorOptional(w.get(prefix + ".bias")));
            this.shape = new long[] {wt.size(0)};
            this.eps = eps;
        }

        Tensor apply(Tensor x) {
            return torch.layer_norm(x, shape, weight, bias, eps, true);
        }

        /** SAM's LayerNorm2d: over the channels of an NCHW tensor. */
        Tensor apply2d(Tensor x) {
            return apply(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2);
        }
    }

    /** Conv2d with square stride and padding (dilation 1, one group). */
    static final class Conv {
        final Tensor weight;
        final TensorOptional bias;
        final long[] stride, padding;

        Conv(Sam2Weights w, String prefix, int stride, int padding) {
            this.weight = w.get(prefix + ".weight");
            this.bias = w.keep(new TensorOptional(w.get(prefix + ".bias")));
            this.stride = new long[] {stride, stride};
            this.padding = new long[] {padding, padding};
        }

        Tensor apply(Tensor x) {
            return torch.conv2d(x, weight, bias, stride, padding, ONE, 1);
        }
    }

    /** ConvTranspose2d with kernel = stride = 2 (SAM's output upscaling). */
    static final class ConvTranspose2x2 {
        final Tensor weight;
        final TensorOptional bias;

        ConvTranspose2x2(Sam2Weights w, String prefix) {
            this.weight = w.get(prefix + ".weight");
            this.bias = w.keep(new TensorOptional(w.get(prefix + ".bias")));
        }

        Tensor apply(Tensor x) {
            return torch.conv_transpose2d(x, weight, bias, TWO, ZERO, ZERO, 1, ONE);
        }
    }

    /** GELU, exact (erf) form as nn.GELU(). */
    static Tensor gelu(Tensor x) {
        return torch.gelu(x);
    }

    static Tensor relu(Tensor x) {
        return torch.relu(x);
    }

    /** Max-pool 2x2, stride 2, of an NHWC tensor (SAM2's do_pool). */
    static Tensor maxPool2NHWC(Tensor x) {
        Tensor p = torch.max_pool2d(x.permute(0, 3, 1, 2), TWO, TWO, ZERO, ONE, false);
        return p.permute(0, 2, 3, 1);
    }

    /** Softmax attention, scale head_dim^-0.5: q (B, h, Nq, d), k/v (B, h, Nk, d). */
    static Tensor attention(Tensor q, Tensor k, Tensor v) {
        return torch.scaled_dot_product_attention(q, k, v, NO_MASK, 0.0, false, DEFAULT_SCALE, false);
    }

    /**
     * A fused projection (B, N, parts·heads·d) as {@code (parts, B, heads, N, d)}: {@code select(0, i)} is part i
     * with the layout SDPA takes. The same views as {@code unbind(2)} then {@code transpose(1, 2)} of each part
     * (identical strides and offsets), with two JavaCPP objects plus one per part instead of a vector, one per
     * part and one per transpose.
     */
    static Tensor splitHeads(Tensor x, long b, long n, long parts, long heads, long d) {
        return x.reshape(b, n, parts, heads, d).permute(2, 0, 3, 1, 4);
    }

    static Tensor cat(long dim, Tensor... parts) {
        return torch.cat(new TensorVector(parts), dim);
    }

    static Tensor stack(long dim, Tensor... parts) {
        return torch.stack(new TensorVector(parts), dim);
    }

    static Scalar s(double v) {
        return new Scalar(v);
    }

    static ScalarOptional optional(double v) {
        return new ScalarOptional(new Scalar(v));
    }
}
