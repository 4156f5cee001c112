package dev.sa2va.rl;

import dev.sa2va.core.KernelCall;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.kernels.MaskKind;
import dev.sa2va.kernels.MaskPolicyKernels;
import dev.sa2va.metrics.BitMasks;
import dev.sa2va.metrics.MaskMetrics;
import dev.sa2va.metrics.MaskTargets;
import java.util.Arrays;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The stochastic mask policy for RL on segmentation: every pixel is an independent Bernoulli action,
 * {@code m_i ~ Bernoulli(sigmoid(z_i / tau))}. A thresholded mask is deterministic, so every sample of a group gets the
 * same reward and the group advantage is zero (architecture.md §4); sampling restores a learning signal.
 *
 * <p>Randomness is Philox4x32-10, a pure function of {@code (seed, offset, logits)}: the same masks on CPU and CUDA
 * (up to float rounding of the sigmoid where the uniform number is within ~1e-7 of p) and for any launch shape. Use a
 * new {@code offset} (or seed) per step. Samples come back bit-packed ({@link BitMasks}).
 *
 * <p>Per sample, {@code log pi(m) = sum_i m_i log p_i + (1 - m_i) log(1 - p_i)} and the entropy {@code sum_i H(p_i)},
 * both divided by the pixel count P when {@code normalize} (per-pixel averages, the token-level normalisation of DAPO;
 * without it a ratio exp(logp - logp_old) over ~1e6 pixels overflows). Nothing synchronises the host.
 */
public final class MaskPolicy {
    private MaskPolicy() {
    }

    /** Rows of {@link Sample#policy()} and {@link #logProb}. */
    public static final int LOG_PROB = 0, ENTROPY = 1;

    /**
     * @param masks  the sampled masks, N x P bits
     * @param policy float32 {@code [2, N]}: log pi(m) and entropy per sample
     * @param scores the samples' statistics and rewards against the targets, or null when sampled without targets
     */
    public record Sample(BitMasks masks, Tensor policy, MaskMetrics.Result scores) {
        public Tensor logProb() {
            return policy.select(0, LOG_PROB);
        }

        public Tensor entropy() {
            return policy.select(0, ENTROPY);
        }
    }

    /** Samples N masks from logits {@code [N, ...]} (float32 / float16 / bfloat16). */
    public static Sample sample(Tensor logits, double temperature, long seed, long offset, boolean normalize) {
        return run(logits, temperature, seed, offset, normalize, null, null, null);
    }

    /**
     * Samples and scores in one pass: the masks, their log-probabilities and entropies, and each sample's statistics
     * and reward against its target ({@code targets.group(G)}: G samples per target row), as
     * {@link MaskMetrics#evaluate} would compute for the sampled masks.
     */
    public static Sample sample(Tensor logits, double temperature, long seed, long offset, boolean normalize,
                                MaskTargets targets, MaskMetrics.Spec spec) {
        return sample(logits, temperature, seed, offset, normalize, targets, spec, null);
    }

    /**
     * {@link #sample(Tensor, double, long, long, boolean, MaskTargets, MaskMetrics.Spec)} writing into {@code reuse}'s
     * tensors when they fit (e.g. the previous step's sample, once its masks are no longer needed).
     */
    public static Sample sample(Tensor logits, double temperature, long seed, long offset, boolean normalize,
                                MaskTargets targets, MaskMetrics.Spec spec, Sample reuse) {
        if (targets == null || spec == null) {
            throw new IllegalArgumentException("targets and spec must not be null (use the overload without them)");
        }
        return run(logits, temperature, seed, offset, normalize, targets, spec, reuse);
    }

    private static Sample run(Tensor logits, double temperature, long seed, long offset, boolean normalize,
                              MaskTargets targets, MaskMetrics.Spec spec, Sample reuse) {
        checkLogits(logits);
        float tau = temperature(temperature);
        int dev = KernelCall.device("logits", logits);
        long n = logits.size(0), p = logits.numel() / n;
        int dtype = TensorCheck.nativeDType(Torch.dtype(logits));
        MaskTargets.Bound b = targets == null ? null : targets.bind(TensorCheck.shapeOf(logits), dev, "logits");
        MaskMetrics.Result old = reuse == null ? null : reuse.scores();
        Tensor bits = KernelCall.reuse(reuse == null ? null : reuse.masks().bits(), ScalarType.Byte, dev, n, (p + 7) / 8);
        Tensor policy = KernelCall.reuse(reuse == null ? null : reuse.policy(), ScalarType.Float, dev,
                MaskKind.POLICY_ROWS, n);
        Tensor stats = b == null ? null : KernelCall.reuse(old == null ? null : old.stats(), ScalarType.Double, dev,
                MaskKind.STATS_ROWS, n);
        Tensor scores = b == null ? null : KernelCall.reuse(old == null ? null : old.scores(), ScalarType.Float, dev,
                MaskKind.SCORE_ROWS, n);
        Pointer t = b == null ? null : b.target(), r = b == null ? null : b.roi();
        int tk = b == null ? MaskKind.NONE : b.targetKind(), rk = b == null ? MaskKind.NONE : b.roiKind();
        long group = b == null ? 1 : b.group();
        float[] sp = spec == null ? null : spec.nativeArray();
        Pointer st = stats == null ? null : stats.data_ptr(), sc = scores == null ? null : scores.data_ptr();
        if (dev >= 0) {
            Pointer stream = KernelCall.stream(dev, "mask_sample_cuda");
            MaskPolicyKernels.mask_sample_cuda(logits.data_ptr(), dtype, n, p, tau, seed, offset, normalize ? 1 : 0, t,
                    tk, r, rk, group, sp, bits.data_ptr(), policy.data_ptr(), st, sc, stream);
        } else {
            MaskPolicyKernels.mask_sample_cpu(logits.data_ptr(), dtype, n, p, tau, seed, offset, normalize ? 1 : 0, t,
                    tk, r, rk, group, sp, bits.data_ptr(), policy.data_ptr(), st, sc);
        }
        long[] shape = sampleShape(logits);
        BitMasks masks = reuse != null && reuse.masks().bits() == bits && Arrays.equals(reuse.masks().sampleShape(), shape)
                ? reuse.masks() : new BitMasks(bits, shape);
        MaskMetrics.Result res = b == null ? null
                : old != null && old.stats() == stats && old.scores() == scores ? old : new MaskMetrics.Result(stats, scores);
        return reuse != null && reuse.masks() == masks && reuse.policy() == policy && reuse.scores() == res ? reuse
                : new Sample(masks, policy, res);
    }

    /** log pi and entropy of given masks under {@code logits}: float32 {@code [2, N]} (rows {@link #LOG_PROB}, {@link #ENTROPY}). */
    public static Tensor logProb(Tensor logits, BitMasks masks, double temperature, boolean normalize) {
        return evalLogProb(logits, masks, temperature, normalize, false)[0];
    }

    /** Per-pixel log pi(m_i), float32 {@code [N, P]}: the "tokens" of a pixel-level PPO ratio ({@link PpoLoss}). */
    public static Tensor logProbPerPixel(Tensor logits, BitMasks masks, double temperature) {
        return evalLogProb(logits, masks, temperature, false, true)[1];
    }

    private static Tensor[] evalLogProb(Tensor logits, BitMasks masks, double temperature, boolean normalize,
                                        boolean perPixel) {
        checkLogits(logits);
        float tau = temperature(temperature);
        int dev = KernelCall.device("logits", logits);
        long n = logits.size(0), p = logits.numel() / n;
        checkMasks(masks, n, p, dev);
        int dtype = TensorCheck.nativeDType(Torch.dtype(logits));
        Tensor policy = KernelCall.empty(ScalarType.Float, dev, MaskKind.POLICY_ROWS, n);
        Tensor pix = perPixel ? KernelCall.empty(ScalarType.Float, dev, n, p) : null;
        Pointer pp = pix == null ? null : pix.data_ptr();
        if (dev >= 0) {
            Pointer stream = KernelCall.stream(dev, "mask_logprob_cuda");
            MaskPolicyKernels.mask_logprob_cuda(logits.data_ptr(), dtype, masks.bits().data_ptr(), n, p, tau,
                    normalize ? 1 : 0, policy.data_ptr(), pp, stream);
        } else {
            MaskPolicyKernels.mask_logprob_cpu(logits.data_ptr(), dtype, masks.bits().data_ptr(), n, p, tau,
                    normalize ? 1 : 0, policy.data_ptr(), pp);
        }
        return new Tensor[] {policy, pix};
    }

    /**
     * Gradient w.r.t. the logits of {@code F = sum_n sum_i g_{n,i} log pi(m_{n,i}) + h sum_n sum_i H_{n,i}}
     * (each sum over pixels divided by P when {@code normalize}):
     * {@code dF/dz_i = (g (m_i - p_i) - h x_i p_i (1 - p_i)) / tau}, {@code x = z / tau}.
     * For REINFORCE with advantages A and an entropy bonus c, minimising {@code -F}: pass {@code g = -A} and
     * {@code h = -c}. {@code g} is float32 {@code [N]} (one weight per sample) or {@code [N, P]} / the logits' shape
     * (per pixel, e.g. {@link PpoLoss.Result#dlogp()} for pixel tokens). Returns a tensor like the logits.
     */
    public static Tensor gradient(Tensor logits, BitMasks masks, double temperature, boolean normalize, Tensor g,
                                  double h) {
        return gradient(logits, masks, temperature, normalize, g, h, null);
    }

    /** {@link #gradient(Tensor, BitMasks, double, boolean, Tensor, double)} into {@code reuse} when it fits. */
    public static Tensor gradient(Tensor logits, BitMasks masks, double temperature, boolean normalize, Tensor g,
                                  double h, Tensor reuse) {
        checkLogits(logits);
        float tau = temperature(temperature);
        int dev = KernelCall.device("logits", logits);
        long n = logits.size(0), p = logits.numel() / n;
        checkMasks(masks, n, p, dev);
        TensorCheck.of("g", g).dtype(ScalarType.Float).contiguous();
        KernelCall.requireDevice("g", g, "logits", dev);
        boolean perPixel;
        if (g.numel() == n && g.dim() == 1) {
            perPixel = false;
        } else if (g.numel() == n * p && g.size(0) == n) {
            perPixel = true;
        } else {
            throw new IllegalArgumentException("g: shape " + TensorCheck.shapeString(g) + " is neither [" + n
                    + "] (per sample) nor [" + n + ", " + p + "] (per pixel) for logits " + TensorCheck.shapeString(logits));
        }
        if (!Double.isFinite(h)) {
            throw new IllegalArgumentException("h: entropy weight must be finite, got " + h);
        }
        int dtype = TensorCheck.nativeDType(Torch.dtype(logits));
        Tensor grad = KernelCall.reuse(reuse, Torch.dtype(logits), dev, TensorCheck.shapeOf(logits));
        if (dev >= 0) {
            Pointer stream = KernelCall.stream(dev, "mask_policy_grad_cuda");
            MaskPolicyKernels.mask_policy_grad_cuda(logits.data_ptr(), dtype, masks.bits().data_ptr(), n, p, tau,
                    normalize ? 1 : 0, g.data_ptr(), perPixel ? 1 : 0, (float) h, grad.data_ptr(), stream);
        } else {
            MaskPolicyKernels.mask_policy_grad_cpu(logits.data_ptr(), dtype, masks.bits().data_ptr(), n, p, tau,
                    normalize ? 1 : 0, g.data_ptr(), perPixel ? 1 : 0, (float) h, grad.data_ptr());
        }
        return grad;
    }

    private static void checkLogits(Tensor logits) {
        TensorCheck.of("logits", logits).dtype(TensorCheck.FLOAT_TYPES).minDims(1).nonEmpty().contiguous();
        long n = logits.size(0), p = logits.numel() / n;
        if (p >= (1L << 31)) {
            throw new IllegalArgumentException("logits: at most 2^31 - 1 pixels per sample, got " + p);
        }
    }

    private static float temperature(double t) {
        if (!(t > 0) || !Double.isFinite(t) || (float) t == 0f) {
            throw new IllegalArgumentException("temperature: must be finite and > 0, got " + t);
        }
        return (float) t;
    }

    private static void checkMasks(BitMasks masks, long n, long p, int dev) {
        if (masks == null) {
            throw new IllegalArgumentException("masks: null");
        }
        if (masks.count() != n || masks.pixels() != p) {
            throw new IllegalArgumentException("masks: " + masks + " do not match the logits' " + n + " samples of "
                    + p + " pixels");
        }
        KernelCall.requireDevice("masks", masks.bits(), "logits", dev);
    }

    private static long[] sampleShape(Tensor logits) {
        long[] s = TensorCheck.shapeOf(logits);
        return s.length == 1 ? new long[] {1} : Arrays.copyOfRange(s, 1, s.length);
    }
}
