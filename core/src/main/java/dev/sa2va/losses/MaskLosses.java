package dev.sa2va.losses;

import dev.sa2va.core.KernelCall;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.kernels.MaskKind;
import dev.sa2va.kernels.MaskStatsKernels;
import dev.sa2va.metrics.MaskTargets;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Supervised segmentation losses on mask logits with their gradient, from the per-sample sums of one mask pass
 * (S = sum p*y, A = sum p, B = sum y over the region of interest, p = sigmoid(z)):
 * <pre>
 *   BCE      = mean over the ROI of pos_weight*y*softplus(-z) + (1-y)*softplus(z)   (torch BCEWithLogits, pos_weight)
 *   Dice     = 1 - (2S + s) / (A + B + s)                                            (MONAI DiceLoss, sigmoid=True)
 *   Tversky  = (1 - TI)^gamma,  TI = (S + s) / (S + alpha (A - S) + beta (B - S) + s)   (gamma = 1: Tversky loss;
 *              gamma &lt; 1: focal Tversky, Abraham &amp; Khan 2019, whose exponent 1/gamma' = 0.75 for gamma' = 4/3)
 *   loss_n   = wBce BCE + wDice Dice + wTversky Tversky,   L = mean over samples of loss_n
 * </pre>
 * Two launches: the pass (sums, per-sample losses and gradient coefficients) and, if asked, the elementwise gradient
 * dL/dz (zero outside the ROI) in the logits' dtype. No host synchronisation.
 */
public final class MaskLosses {
    private MaskLosses() {
    }

    /** Weights and parameters. Immutable. */
    public record Spec(double wBce, double wDice, double wTversky, double posWeight, double smooth, double alpha,
                       double beta, double gamma) {
        /**
         * BCE + Dice (LISA's recipe without its 2:0.5 weighting), smoothing 1e-5 (MONAI's default), Tversky alpha 0.3,
         * beta 0.7 (recall-weighted, Salehi et al. 2017) with exponent 0.75 if enabled.
         */
        public static final Spec DEFAULT = new Spec(1, 1, 0, 1, 1e-5, 0.3, 0.7, 0.75);

        public Spec {
            for (double v : new double[] {wBce, wDice, wTversky, posWeight, smooth, alpha, beta, gamma}) {
                if (!Double.isFinite(v) || v < 0) {
                    throw new IllegalArgumentException("loss spec: weights and parameters must be finite and >= 0, got "
                            + this);
                }
            }
            if (gamma <= 0) {
                throw new IllegalArgumentException("gamma: Tversky exponent must be > 0, got " + gamma);
            }
        }

        public Spec withWeights(double wBce, double wDice, double wTversky) {
            return new Spec(wBce, wDice, wTversky, posWeight, smooth, alpha, beta, gamma);
        }

        public Spec withTversky(double alpha, double beta, double gamma) {
            return new Spec(wBce, wDice, wTversky, posWeight, smooth, alpha, beta, gamma);
        }

        public Spec withPosWeight(double w) {
            return new Spec(wBce, wDice, wTversky, w, smooth, alpha, beta, gamma);
        }

        public Spec withSmooth(double s) {
            return new Spec(wBce, wDice, wTversky, posWeight, s, alpha, beta, gamma);
        }

        float[] nativeArray() {
            float[] a = new float[MaskKind.SPEC_LEN];
            a[MaskKind.SPEC_L_BCE] = (float) wBce;
            a[MaskKind.SPEC_L_DICE] = (float) wDice;
            a[MaskKind.SPEC_L_TVERSKY] = (float) wTversky;
            a[MaskKind.SPEC_POS_WEIGHT] = (float) posWeight;
            a[MaskKind.SPEC_SMOOTH] = (float) smooth;
            a[MaskKind.SPEC_L_ALPHA] = (float) alpha;
            a[MaskKind.SPEC_L_BETA] = (float) beta;
            a[MaskKind.SPEC_L_GAMMA] = (float) gamma;
            return a;
        }
    }

    /** Rows of {@link Result#losses()}. */
    public static final int TOTAL = 0, BCE = 1, DICE = 2, TVERSKY = 3;

    /**
     * @param losses float32 {@code [4, N]}: total, BCE, Dice loss, Tversky loss per sample (NaN for a sample with
     *               invalid targets or NaN logits)
     * @param stats  float64 {@code [10, N]} as {@code MaskMetrics.Result#stats()}
     * @param grad   dL/dlogits for L = mean over samples of the total, same shape and dtype as the logits; null if
     *               not asked for
     */
    public record Result(Tensor losses, Tensor stats, Tensor grad) {
        /** Per-sample totals, float32 {@code [N]}. */
        public Tensor total() {
            return losses.select(0, TOTAL);
        }

        /** L = mean over samples, a 0-d float32 tensor on the device. */
        public Tensor mean() {
            return total().mean();
        }
    }

    public static Result compute(Tensor logits, MaskTargets targets, Spec spec, boolean withGrad) {
        return compute(logits, targets, spec, withGrad, null);
    }

    /** {@link #compute(Tensor, MaskTargets, Spec, boolean)} into {@code reuse}'s tensors when they fit. */
    public static Result compute(Tensor logits, MaskTargets targets, Spec spec, boolean withGrad, Result reuse) {
        TensorCheck.of("logits", logits).dtype(TensorCheck.FLOAT_TYPES).minDims(1).nonEmpty().contiguous();
        if (targets == null || spec == null) {
            throw new IllegalArgumentException("targets and spec must not be null");
        }
        int dev = KernelCall.device("logits", logits);
        long n = logits.size(0), p = logits.numel() / n;
        if (p >= (1L << 31)) {
            throw new IllegalArgumentException("logits: at most 2^31 - 1 pixels per sample, got " + p);
        }
        MaskTargets.Bound b = targets.bind(TensorCheck.shapeOf(logits), dev, "logits");
        int dtype = TensorCheck.nativeDType(Torch.dtype(logits));
        float[] a = spec.nativeArray();
        Tensor stats = KernelCall.reuse(reuse == null ? null : reuse.stats(), ScalarType.Double, dev,
                MaskKind.STATS_ROWS, n);
        Tensor losses = KernelCall.reuse(reuse == null ? null : reuse.losses(), ScalarType.Float, dev,
                MaskKind.LOSS_ROWS, n);
        Tensor coef = KernelCall.empty(ScalarType.Float, dev, MaskKind.COEF_ROWS, n);
        Tensor grad = withGrad ? KernelCall.reuse(reuse == null ? null : reuse.grad(), Torch.dtype(logits), dev,
                TensorCheck.shapeOf(logits)) : null;
        float scale = (float) (1.0 / n);
        float pw = (float) spec.posWeight();
        if (dev >= 0) {
            Pointer stream = KernelCall.stream(dev, "mask_scores_cuda");
            MaskStatsKernels.mask_scores_cuda(logits.data_ptr(), dtype, MaskKind.LOGITS, b.target(), b.targetKind(),
                    b.roi(), b.roiKind(), n, p, b.group(), 0f, a, stats.data_ptr(), null, null, losses.data_ptr(),
                    coef.data_ptr(), stream);
            if (withGrad) {
                MaskStatsKernels.mask_loss_grad_cuda(logits.data_ptr(), dtype, b.target(), b.targetKind(), b.roi(),
                        b.roiKind(), n, p, b.group(), coef.data_ptr(), scale, pw, grad.data_ptr(), stream);
            }
        } else {
            MaskStatsKernels.mask_scores_cpu(logits.data_ptr(), dtype, MaskKind.LOGITS, b.target(), b.targetKind(),
                    b.roi(), b.roiKind(), n, p, b.group(), 0f, a, stats.data_ptr(), null, null, losses.data_ptr(),
                    coef.data_ptr());
            if (withGrad) {
                MaskStatsKernels.mask_loss_grad_cpu(logits.data_ptr(), dtype, b.target(), b.targetKind(), b.roi(),
                        b.roiKind(), n, p, b.group(), coef.data_ptr(), scale, pw, grad.data_ptr());
            }
        }
        return new Result(losses, stats, grad);
    }
}
