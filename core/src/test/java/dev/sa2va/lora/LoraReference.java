package dev.sa2va.lora;

import dev.sa2va.core.Torch;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Independent reference for the LoRA layer: plain libtorch ops in float64 with libtorch autograd for the gradients,
 * on the inputs' device. Nothing of our kernels is involved except the dropout mask, which is the mask the kernels
 * are documented to use (LoraOps.dropoutMask) so that both sides drop the same elements.
 */
final class LoraReference {
    private LoraReference() {
    }

    record Result(Tensor y, Tensor dx, Tensor dA, Tensor dB) {
    }

    /**
     * y = x·Wᵀ + bias + s·((x ⊙ keep)·k·Aᵀ)·Bᵀ and, when dy is given, the gradients of L = Σ y ⊙ dy.
     *
     * @param keep uint8 mask with x's element count (null: no dropout); k = LoraOps.dropoutScale(p)
     */
    static Result compute(Tensor x, Tensor w, Tensor bias, Tensor a, Tensor b, double scale, Tensor keep, double p,
                          Tensor dy) {
        Tensor x64 = f64Leaf(x), a64 = f64Leaf(a), b64 = f64Leaf(b);
        Tensor w64 = w.to(ScalarType.Double);
        Tensor xd = x64;
        if (keep != null) {
            Tensor m = keep.to(x.device(), ScalarType.Double).view(x.sizes());
            xd = x64.mul(m).mul(Torch.scalar(LoraOps.dropoutScale(p)));
        }
        Tensor y = torch.matmul(x64, w64.t()).add(torch.matmul(torch.matmul(xd, a64.t()).mul(Torch.scalar(scale)), b64.t()));
        if (bias != null) {
            y = y.add(bias.to(ScalarType.Double));
        }
        if (dy == null) {
            return new Result(y.detach(), null, null, null);
        }
        y.mul(dy.to(ScalarType.Double)).sum().backward();
        return new Result(y.detach(), x64.grad(), a64.grad(), b64.grad());
    }

    private static Tensor f64Leaf(Tensor t) {
        Tensor c = t.to(ScalarType.Double).detach().clone();
        c.set_requires_grad(true);
        return c;
    }
}
