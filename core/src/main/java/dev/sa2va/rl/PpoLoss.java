package dev.sa2va.rl;

import dev.sa2va.core.KernelCall;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.kernels.RlKernels;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The PPO / GRPO clipped-surrogate loss in one fused pass over the tokens (one launch; two when a token mask or
 * advantage normalisation needs data-dependent totals), with its diagnostics and the gradients w.r.t. the new
 * log-probabilities, the values and the entropies. No host synchronisation.
 *
 * <p>Per active token: {@code ratio = exp(logp - logp_old)},
 * {@code pg = max(-A ratio, -A clamp(ratio, 1 - epsLow, 1 + epsHigh))}, optional k3 KL to a reference
 * {@code exp(ref - logp) - (ref - logp) - 1}, value loss {@code 0.5 max((V - R)^2, (V_old + clamp(V - V_old, ±epsValue)
 * - R)^2)} (epsValue &gt; 0) or {@code 0.5 (V - R)^2}; {@code loss = sum w (pg + klCoef kl) + vfCoef sum w v - entCoef
 * sum w H} with aggregation weights w (see {@link Aggregation}). Gradients follow torch's rules (max/min ties split the
 * gradient in halves, clamp has derivative 1 on the closed interval), so they match autograd of the same formula.
 *
 * <p>Formula parity: {@link Config#CLEANRL} is CleanRL ppo.py ({@code clip_coef=0.2, clip_vloss=True, vf_coef=0.5,
 * ent_coef=0.01, norm_adv=True}, advantages normalised per minibatch with {@code std + 1e-8});
 * {@link Config#TRL_GRPO} is TRL GRPOTrainer's loss with its defaults as read at huggingface/trl@f2cd5771
 * ({@code epsilon=0.2, epsilon_high=epsilon, beta=0.0, loss_type="dapo"}: token-level mean over the batch's active
 * tokens, single process), with per-completion advantages from {@link GroupAdvantages}.
 */
public final class PpoLoss {
    private PpoLoss() {
    }

    /** How per-token terms are averaged. */
    public enum Aggregation {
        /** sum over active tokens / number of active tokens (CleanRL's mean; TRL "bnpo", and "dapo" in one process). */
        TOKEN_MEAN,
        /** mean over rows of (row sum / row's active tokens) (TRL "grpo"). */
        SEQUENCE_MEAN,
        /** sum over active tokens / a constant (TRL "dr_grpo" with B * max_completion_length). */
        CONSTANT
    }

    /** Loss configuration; immutable, with {@code with...} copies. */
    public record Config(double epsLow, double epsHigh, double epsValue, double vfCoef, double entCoef, double klCoef,
                         boolean normalizeAdvantages, double advEps, Aggregation aggregation, double aggConstant) {
        public static final Config CLEANRL = new Config(0.2, 0.2, 0.2, 0.5, 0.01, 0.0, true, 1e-8,
                Aggregation.TOKEN_MEAN, 0);
        public static final Config TRL_GRPO = new Config(0.2, 0.2, 0.0, 0.0, 0.0, 0.0, false, 1e-8,
                Aggregation.TOKEN_MEAN, 0);

        public Config {
            if (!(epsLow >= 0 && epsLow < 1)) {
                throw new IllegalArgumentException("epsLow: must be in [0, 1), got " + epsLow);
            }
            for (double v : new double[] {epsHigh, epsValue, advEps}) {
                if (!(v >= 0) || !Double.isFinite(v)) {
                    throw new IllegalArgumentException("epsHigh, epsValue and advEps must be finite and >= 0: " + this);
                }
            }
            for (double v : new double[] {vfCoef, entCoef, klCoef}) {
                if (!Double.isFinite(v)) {
                    throw new IllegalArgumentException("vfCoef, entCoef and klCoef must be finite: " + this);
                }
            }
            if (aggregation == null) {
                throw new IllegalArgumentException("aggregation: null");
            }
            if (aggregation == Aggregation.CONSTANT && !(aggConstant > 0 && Double.isFinite(aggConstant))) {
                throw new IllegalArgumentException("aggConstant: CONSTANT aggregation needs a finite constant > 0, got "
                        + aggConstant);
            }
        }

        public Config withClip(double low, double high) {
            return new Config(low, high, epsValue, vfCoef, entCoef, klCoef, normalizeAdvantages, advEps, aggregation,
                    aggConstant);
        }

        public Config withValue(double epsValue, double vfCoef) {
            return new Config(epsLow, epsHigh, epsValue, vfCoef, entCoef, klCoef, normalizeAdvantages, advEps,
                    aggregation, aggConstant);
        }

        public Config withEntropy(double entCoef) {
            return new Config(epsLow, epsHigh, epsValue, vfCoef, entCoef, klCoef, normalizeAdvantages, advEps,
                    aggregation, aggConstant);
        }

        public Config withKl(double klCoef) {
            return new Config(epsLow, epsHigh, epsValue, vfCoef, entCoef, klCoef, normalizeAdvantages, advEps,
                    aggregation, aggConstant);
        }

        public Config withNormalization(boolean on, double eps) {
            return new Config(epsLow, epsHigh, epsValue, vfCoef, entCoef, klCoef, on, eps, aggregation, aggConstant);
        }

        public Config withAggregation(Aggregation a, double constant) {
            return new Config(epsLow, epsHigh, epsValue, vfCoef, entCoef, klCoef, normalizeAdvantages, advEps, a,
                    constant);
        }

        float[] nativeArray() {
            return new float[] {(float) epsLow, (float) epsHigh, (float) epsValue, (float) vfCoef, (float) entCoef,
                (float) klCoef, normalizeAdvantages ? 1f : 0f, (float) advEps, aggregation.ordinal(), (float) aggConstant};
        }
    }

    /**
     * The batch, float32 and contiguous unless noted; tokens are {@code [B, L]} (or {@code [B]}: L = 1).
     * {@code advantages}: per token (shape of logp) or per row {@code [B]}; {@code mask}: uint8 / bool, shape of logp
     * (null: all active); {@code values, valuesOld, returns}: all or none; {@code entropy}, {@code refLogp}: optional.
     */
    public record Batch(Tensor logp, Tensor logpOld, Tensor advantages, Tensor mask, Tensor values, Tensor valuesOld,
                        Tensor returns, Tensor entropy, Tensor refLogp) {
        public static Batch of(Tensor logp, Tensor logpOld, Tensor advantages) {
            return new Batch(logp, logpOld, advantages, null, null, null, null, null, null);
        }

        public Batch withMask(Tensor mask) {
            return new Batch(logp, logpOld, advantages, mask, values, valuesOld, returns, entropy, refLogp);
        }

        public Batch withValues(Tensor values, Tensor valuesOld, Tensor returns) {
            return new Batch(logp, logpOld, advantages, mask, values, valuesOld, returns, entropy, refLogp);
        }

        public Batch withEntropy(Tensor entropy) {
            return new Batch(logp, logpOld, advantages, mask, values, valuesOld, returns, entropy, refLogp);
        }

        public Batch withReference(Tensor refLogp) {
            return new Batch(logp, logpOld, advantages, mask, values, valuesOld, returns, entropy, refLogp);
        }
    }

    /** Indices of {@link Result#scalars()}. */
    public static final int LOSS = 0, PG_LOSS = 1, V_LOSS = 2, ENTROPY = 3, APPROX_KL = 4, OLD_APPROX_KL = 5,
            CLIPFRAC = 6, CLIP_ACTIVE = 7, KL_REF = 8, TOKENS = 9;

    /**
     * @param scalars  float32 {@code [10]}: loss, pg_loss, v_loss, entropy (loss-weighted), approx_kl (k3),
     *                 old_approx_kl, clipfrac (CleanRL), clip_active (TRL clip_ratio), kl to the reference (token
     *                 mean), active tokens
     * @param dlogp    d loss / d logp, shape of logp (0 on inactive tokens)
     * @param dvalue   d loss / d values, or null without values
     * @param dentropy d loss / d entropy (= -entCoef w), or null without an entropy input
     */
    public record Result(Tensor scalars, Tensor dlogp, Tensor dvalue, Tensor dentropy) {
        public Tensor loss() {
            return scalars.select(0, LOSS);
        }

        /** The scalars on the host (synchronises on CUDA). */
        public float[] toHost() {
            return Torch.toFloats(scalars);
        }
    }

    public static Result compute(Batch batch, Config config) {
        return compute(batch, config, null);
    }

    /** {@link #compute(Batch, Config)} into {@code reuse}'s tensors when they fit (e.g. the previous minibatch's). */
    public static Result compute(Batch batch, Config config, Result reuse) {
        if (batch == null || config == null) {
            throw new IllegalArgumentException("batch and config must not be null");
        }
        Tensor logp = batch.logp();
        TensorCheck.of("logp", logp).dtype(ScalarType.Float).minDims(1).nonEmpty().contiguous();
        if (logp.dim() > 2) {
            throw new IllegalArgumentException("logp: expected [B, L] or [B], got shape " + TensorCheck.shapeString(logp));
        }
        int dev = KernelCall.device("logp", logp);
        long b = logp.size(0), l = logp.dim() == 2 ? logp.size(1) : 1;
        same("logpOld", batch.logpOld(), logp, dev);
        Tensor adv = batch.advantages();
        TensorCheck.of("advantages", adv).dtype(ScalarType.Float).contiguous();
        KernelCall.requireDevice("advantages", adv, "logp", dev);
        boolean perToken;
        if (java.util.Arrays.equals(TensorCheck.shapeOf(adv), TensorCheck.shapeOf(logp))) {
            perToken = true;
        } else if (adv.dim() == 1 && adv.size(0) == b) {
            perToken = false;
        } else {
            throw new IllegalArgumentException("advantages: shape " + TensorCheck.shapeString(adv) + " is neither the "
                    + "shape of logp " + TensorCheck.shapeString(logp) + " nor [" + b + "] (one per row)");
        }
        if (batch.mask() != null) {
            TensorCheck.of("mask", batch.mask()).dtype(ScalarType.Byte, ScalarType.Bool).sameShape("logp", logp)
                    .contiguous();
            KernelCall.requireDevice("mask", batch.mask(), "logp", dev);
        }
        boolean hasV = batch.values() != null;
        if (hasV != (batch.valuesOld() != null) || hasV != (batch.returns() != null)) {
            throw new IllegalArgumentException("values, valuesOld and returns go together");
        }
        if (hasV) {
            same("values", batch.values(), logp, dev);
            same("valuesOld", batch.valuesOld(), logp, dev);
            same("returns", batch.returns(), logp, dev);
        }
        if (batch.entropy() != null) {
            same("entropy", batch.entropy(), logp, dev);
        }
        if (batch.refLogp() != null) {
            same("refLogp", batch.refLogp(), logp, dev);
        } else if (config.klCoef() != 0) {
            throw new IllegalArgumentException("klCoef: " + config.klCoef() + " needs refLogp (reference log-probs)");
        }
        if (config.normalizeAdvantages() && batch.mask() == null && (perToken ? b * l : b) < 2) {
            throw new IllegalArgumentException("normalizeAdvantages: needs at least 2 advantages for a (Bessel) std");
        }
        long[] shape = TensorCheck.shapeOf(logp);
        Tensor scalars = KernelCall.reuse(reuse == null ? null : reuse.scalars(), ScalarType.Float, dev, 10);
        Tensor dlogp = KernelCall.reuse(reuse == null ? null : reuse.dlogp(), ScalarType.Float, dev, shape);
        Tensor dvalue = hasV ? KernelCall.reuse(reuse == null ? null : reuse.dvalue(), ScalarType.Float, dev, shape) : null;
        Tensor dent = batch.entropy() != null
                ? KernelCall.reuse(reuse == null ? null : reuse.dentropy(), ScalarType.Float, dev, shape) : null;
        Pointer mask = ptr(batch.mask()), v = ptr(batch.values()), vo = ptr(batch.valuesOld()), r = ptr(batch.returns());
        Pointer h = ptr(batch.entropy()), ref = ptr(batch.refLogp());
        float[] params = config.nativeArray();
        if (dev >= 0) {
            Pointer stream = KernelCall.stream(dev, "ppo_loss_cuda");
            RlKernels.ppo_loss_cuda(logp.data_ptr(), batch.logpOld().data_ptr(), adv.data_ptr(), perToken ? 1 : 0, mask,
                    b, l, v, vo, r, h, ref, params, scalars.data_ptr(), dlogp.data_ptr(), ptr(dvalue), ptr(dent), stream);
        } else {
            RlKernels.ppo_loss_cpu(logp.data_ptr(), batch.logpOld().data_ptr(), adv.data_ptr(), perToken ? 1 : 0, mask,
                    b, l, v, vo, r, h, ref, params, scalars.data_ptr(), dlogp.data_ptr(), ptr(dvalue), ptr(dent));
        }
        return reuse != null && reuse.scalars() == scalars && reuse.dlogp() == dlogp && reuse.dvalue() == dvalue
                && reuse.dentropy() == dent ? reuse : new Result(scalars, dlogp, dvalue, dent);
    }

    private static void same(String name, Tensor x, Tensor logp, int dev) {
        TensorCheck.of(name, x).dtype(ScalarType.Float).sameShape("logp", logp).contiguous();
        KernelCall.requireDevice(name, x, "logp", dev);
    }

    private static Pointer ptr(Tensor t) {
        return t == null ? null : t.data_ptr();
    }
}
