package dev.sa2va.sam2;

import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/** Short forms of the libtorch functional ops used by the SAM2 modules (the preset's overloads are long). */
final class Nn {
    private Nn() {
    }

    static Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        return torch.linear(x, weight, new TensorOptional(bias));
    }

    /** LayerNorm over the last dimension. */
    static Tensor layerNorm(Tensor x, Tensor weight, Tensor bias, double eps) {
        return torch.layer_norm(x, new long[] {x.size(-1)}, new TensorOptional(weight), new TensorOptional(bias), eps,
                true);
    }

    /** SAM's LayerNorm2d: LayerNorm over the channels of an NCHW tensor. */
    static Tensor layerNorm2d(Tensor x, Tensor weight, Tensor bias, double eps) {
        return layerNorm(x.permute(0, 2, 3, 1), weight, bias, eps).permute(0, 3, 1, 2);
    }

    static Tensor conv2d(Tensor x, Tensor weight, Tensor bias, int stride, int padding) {
        return torch.conv2d(x, weight, new TensorOptional(bias), new long[] {stride, stride},
                new long[] {padding, padding}, new long[] {1, 1}, 1);
    }

    /** ConvTranspose2d with kernel = stride = 2 (SAM's output upscaling). */
    static Tensor convTranspose2x2(Tensor x, Tensor weight, Tensor bias) {
        return torch.conv_transpose2d(x, weight, new TensorOptional(bias), new long[] {2, 2}, new long[] {0, 0},
                new long[] {0, 0}, 1, 1, 1);
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
        Tensor nchw = x.permute(0, 3, 1, 2);
        Tensor p = torch.max_pool2d(nchw, new long[] {2, 2}, new long[] {2, 2}, new long[] {0, 0}, new long[] {1, 1},
                false);
        return p.permute(0, 2, 3, 1);
    }

    /** Softmax attention, scale head_dim^-0.5: q (B, h, Nq, d), k/v (B, h, Nk, d). */
    static Tensor attention(Tensor q, Tensor k, Tensor v) {
        return torch.scaled_dot_product_attention(q, k, v, new TensorOptional(), 0.0, false, new DoubleOptional(), false);
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
