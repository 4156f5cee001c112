package dev.sa2va.rl;

import dev.sa2va.core.KernelCall;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.kernels.RlKernels;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Group-relative advantages for G samples per prompt / image, without a value function (one launch):
 * <ul>
 *   <li>{@link Mode#GRPO}: {@code (r - mean_group) / (std_group + eps)}, Bessel std (torch.std) — TRL GRPOTrainer,
 *       scale_rewards="group" (its default), eps = 1e-4;</li>
 *   <li>{@link Mode#GRPO_BATCH_STD}: the same with the std of the whole batch (scale_rewards="batch");</li>
 *   <li>{@link Mode#MEAN_ONLY}: {@code r - mean_group} (scale_rewards="none", Dr. GRPO);</li>
 *   <li>{@link Mode#RLOO}: {@code r - (sum_group - r) / (G - 1)}, the leave-one-out baseline of TRL's RLOOTrainer.</li>
 * </ul>
 * Rewards are group-major: sample j of group b at {@code b * G + j} (the order {@link MaskPolicy} samples in when the
 * logits repeat each image G times).
 */
public final class GroupAdvantages {
    private GroupAdvantages() {
    }

    public enum Mode { GRPO, GRPO_BATCH_STD, MEAN_ONLY, RLOO }

    /** TRL's GRPO eps. */
    public static final double TRL_EPS = 1e-4;

    /**
     * @param advantages float32, shape of the rewards
     * @param groupStats float32 {@code [2, B]}: mean and std of each group (batch std in GRPO_BATCH_STD mode)
     */
    public record Result(Tensor advantages, Tensor groupStats) {
        /** Fraction of groups whose std is 0 (TRL's frac_reward_zero_std: nothing to learn there), 0-d, on the device. */
        public Tensor fracZeroStd() {
            return groupStats.select(0, 1).le(dev.sa2va.core.Torch.scalar(1e-8)).to(ScalarType.Float).mean();
        }
    }

    public static Result grpo(Tensor rewards, int groupSize) {
        return compute(rewards, groupSize, Mode.GRPO, TRL_EPS);
    }

    public static Result rloo(Tensor rewards, int groupSize) {
        return compute(rewards, groupSize, Mode.RLOO, 0);
    }

    /** {@code rewards}: float32 {@code [B * G]} or {@code [B, G]}, contiguous (a row of a metric-major scores tensor is). */
    public static Result compute(Tensor rewards, int groupSize, Mode mode, double eps) {
        return compute(rewards, groupSize, mode, eps, null);
    }

    /** {@link #compute(Tensor, int, Mode, double)} into {@code reuse}'s tensors when they fit. */
    public static Result compute(Tensor rewards, int groupSize, Mode mode, double eps, Result reuse) {
        TensorCheck.of("rewards", rewards).dtype(ScalarType.Float).nonEmpty().contiguous();
        if (rewards.dim() != 1 && !(rewards.dim() == 2 && rewards.size(1) == groupSize)) {
            throw new IllegalArgumentException("rewards: expected [B * G] or [B, " + groupSize + "], got shape "
                    + TensorCheck.shapeString(rewards));
        }
        if (mode == null) {
            throw new IllegalArgumentException("mode: null");
        }
        if (groupSize < 2) {
            throw new IllegalArgumentException("groupSize: must be >= 2 (a single sample has no baseline), got "
                    + groupSize);
        }
        long m = rewards.numel();
        if (m % groupSize != 0) {
            throw new IllegalArgumentException("rewards: " + m + " rewards are not a whole number of groups of "
                    + groupSize);
        }
        if (!(eps >= 0) || !Double.isFinite(eps)) {
            throw new IllegalArgumentException("eps: must be finite and >= 0, got " + eps);
        }
        int dev = KernelCall.device("rewards", rewards);
        long groups = m / groupSize;
        Tensor adv = KernelCall.reuse(reuse == null ? null : reuse.advantages(), ScalarType.Float, dev,
                TensorCheck.shapeOf(rewards));
        Tensor stats = KernelCall.reuse(reuse == null ? null : reuse.groupStats(), ScalarType.Float, dev, 2, groups);
        if (dev >= 0) {
            Pointer stream = KernelCall.stream(dev, "group_advantages_cuda");
            RlKernels.group_advantages_cuda(rewards.data_ptr(), groups, groupSize, mode.ordinal(), (float) eps,
                    adv.data_ptr(), stats.data_ptr(), stream);
        } else {
            RlKernels.group_advantages_cpu(rewards.data_ptr(), groups, groupSize, mode.ordinal(), (float) eps,
                    adv.data_ptr(), stats.data_ptr());
        }
        return reuse != null && reuse.advantages() == adv && reuse.groupStats() == stats ? reuse : new Result(adv, stats);
    }
}
