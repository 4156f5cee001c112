package dev.sa2va.mllm;

import dev.sa2va.core.TensorCheck;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/**
 * The few layer types of the MLLM as plain weight holders over libtorch's functional ops (no nn.Module: the
 * forward is chained in Java, and weights can be shared, fused or swapped without module plumbing).
 */
final class Nn {
    private Nn() {
    }

    /** y = x·Wᵀ + b; {@code bias} may be null. The optional wrapper is built once, not per call. */
    static final class Linear implements AutoCloseable {
        final Tensor weight;
        final Tensor bias;
        private final TensorOptional biasOpt;

        Linear(Tensor weight, Tensor bias) {
            this.weight = Scope.pin(weight);
            this.bias = bias == null ? null : Scope.pin(bias);
            this.biasOpt = bias == null ? null : Scope.pin(new TensorOptional(bias));
        }

        long outFeatures() {
            return weight.size(0);
        }

        long inFeatures() {
            return weight.size(1);
        }

        Tensor forward(Tensor x) {
            return biasOpt == null ? torch.linear(x, weight) : torch.linear(x, weight, biasOpt);
        }

        @Override
        public void close() {
            if (biasOpt != null) {
                biasOpt.close();
                bias.close();
            }
            weight.close();
        }
    }

    /** LayerNorm over the last dimension (libtorch computes in fp32 for bf16 inputs, as nn.LayerNorm). */
    static final class LayerNorm implements AutoCloseable {
        final Tensor weight;
        final Tensor bias;
        final double eps;
        private final TensorOptional w;
        private final TensorOptional b;
        private final long[] shape;

        LayerNorm(Tensor weight, Tensor bias, double eps) {
            this.weight = Scope.pin(weight);
            this.bias = Scope.pin(bias);
            this.eps = eps;
            this.w = Scope.pin(new TensorOptional(weight));
            this.b = Scope.pin(new TensorOptional(bias));
            this.shape = new long[] {weight.size(0)};
        }

        Tensor forward(Tensor x) {
            return torch.layer_norm(x, shape, w, b, eps, true);
        }

        @Override
        public void close() {
            w.close();
            b.close();
            weight.close();
            bias.close();
        }
    }

    /**
     * RMSNorm with a weight (Qwen2RMSNorm). libtorch's fused {@code rms_norm} normalises in fp32 and rounds once;
     * HF rounds the normalised value to the input dtype before multiplying by the weight. In fp32 both are the
     * same; in bf16 ours is the more accurate of the two by at most one bf16 rounding.
     */
    static final class RmsNorm implements AutoCloseable {
        final Tensor weight;
        final double eps;
        private final TensorOptional w;
        private final DoubleOptional epsOpt;
        private final long[] shape;

        RmsNorm(Tensor weight, double eps) {
            this.weight = Scope.pin(weight);
            this.eps = eps;
            this.w = Scope.pin(new TensorOptional(weight));
            this.epsOpt = Scope.pin(new DoubleOptional(eps));
            this.shape = new long[] {weight.size(0)};
        }

        Tensor forward(Tensor x) {
            return torch.rms_norm(x, shape, w, epsOpt);
        }

        @Override
        public void close() {
            w.close();
            epsOpt.close();
            weight.close();
        }
    }

    /** Checks the last dimension of an activation against a layer's input width. */
    static void checkWidth(String name, Tensor x, long width) {
        if (x.dim() < 1 || x.size(-1) != width) {
            throw new IllegalArgumentException(name + ": last dimension must be " + width + ", got shape "
                    + TensorCheck.shapeString(x));
        }
    }
}
