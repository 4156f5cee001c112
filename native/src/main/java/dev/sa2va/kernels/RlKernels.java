package dev.sa2va.kernels;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Const;
import org.bytedeco.javacpp.annotation.Namespace;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * GAE, group advantages (GRPO / RLOO) and the fused PPO loss ({@code native/src/main/cpp/rl/}). Raw pointers: see
 * {@code dev.sa2va.rl.Gae}, {@code GroupAdvantages} and {@code PpoLoss} in core.
 */
@Properties(inherit = NativeLibrary.class, value = @Platform(
        include = {"rl/gae.h", "rl/group_advantages.h", "rl/ppo_loss.h"}, library = "jnisa2va"))
@Namespace("sa2va")
public class RlKernels {
    static {
        Loader.load();
    }

    public static native void gae_cpu(@Cast("const float*") Pointer rewards, @Cast("const float*") Pointer values,
                                      @Const Pointer terminated, int termDtype, @Const Pointer truncated,
                                      int truncDtype, @Cast("const float*") Pointer truncValues,
                                      @Cast("const float*") Pointer bootstrap, @Cast("int64_t") long t,
                                      @Cast("int64_t") long n, float gamma, float lambda, float eps,
                                      @Cast("float*") Pointer adv, @Cast("float*") Pointer ret,
                                      @Cast("float*") Pointer normStats);

    public static native void gae_cuda(@Cast("const float*") Pointer rewards, @Cast("const float*") Pointer values,
                                       @Const Pointer terminated, int termDtype, @Const Pointer truncated,
                                       int truncDtype, @Cast("const float*") Pointer truncValues,
                                       @Cast("const float*") Pointer bootstrap, @Cast("int64_t") long t,
                                       @Cast("int64_t") long n, float gamma, float lambda, float eps,
                                       @Cast("float*") Pointer adv, @Cast("float*") Pointer ret,
                                       @Cast("float*") Pointer normStats, int algo,
                                       @Cast("cudaStream_t") Pointer stream);

    /** Chunks per environment the CUDA GAE would use (1 = one thread per environment; warp scan: lanes). */
    public static native int gae_cuda_chunks(@Cast("int64_t") long t, @Cast("int64_t") long n, int algo);

    public static native void group_advantages_cpu(@Cast("const float*") Pointer rewards, @Cast("int64_t") long groups,
                                                   @Cast("int64_t") long g, int mode, float eps,
                                                   @Cast("float*") Pointer adv, @Cast("float*") Pointer stats);

    public static native void group_advantages_cuda(@Cast("const float*") Pointer rewards, @Cast("int64_t") long groups,
                                                    @Cast("int64_t") long g, int mode, float eps,
                                                    @Cast("float*") Pointer adv, @Cast("float*") Pointer stats,
                                                    @Cast("cudaStream_t") Pointer stream);

    public static native void ppo_loss_cpu(@Cast("const float*") Pointer logp, @Cast("const float*") Pointer logpOld,
                                           @Cast("const float*") Pointer adv, int advPerToken,
                                           @Cast("const uint8_t*") Pointer mask, @Cast("int64_t") long b,
                                           @Cast("int64_t") long l, @Cast("const float*") Pointer values,
                                           @Cast("const float*") Pointer valuesOld, @Cast("const float*") Pointer returns,
                                           @Cast("const float*") Pointer entropy, @Cast("const float*") Pointer refLogp,
                                           @Cast("const float*") float[] params, @Cast("float*") Pointer scalars,
                                           @Cast("float*") Pointer dlogp, @Cast("float*") Pointer dvalue,
                                           @Cast("float*") Pointer dentropy);

    public static native void ppo_loss_cuda(@Cast("const float*") Pointer logp, @Cast("const float*") Pointer logpOld,
                                            @Cast("const float*") Pointer adv, int advPerToken,
                                            @Cast("const uint8_t*") Pointer mask, @Cast("int64_t") long b,
                                            @Cast("int64_t") long l, @Cast("const float*") Pointer values,
                                            @Cast("const float*") Pointer valuesOld,
                                            @Cast("const float*") Pointer returns, @Cast("const float*") Pointer entropy,
                                            @Cast("const float*") Pointer refLogp, @Cast("const float*") float[] params,
                                            @Cast("float*") Pointer scalars, @Cast("float*") Pointer dlogp,
                                            @Cast("float*") Pointer dvalue, @Cast("float*") Pointer dentropy,
                                            @Cast("cudaStream_t") Pointer stream);

    /** GRPO schedules of ppo_loss_cuda (ppo_loss.h): back to the default, the old one, the mask stash. */
    public static final int PPO_GRPO_DEFAULT = 0, PPO_GRPO_OLD = 1, PPO_GRPO_STASH = 2;

    /**
     * Schedule of ppo_loss_cuda for GRPO-shaped calls with a mask and token-mean or constant aggregation, for A/B
     * measurements: {@link #PPO_GRPO_OLD}, {@link #PPO_GRPO_STASH}, or {@link #PPO_GRPO_DEFAULT} (SA2VA_PPO_GRPO
     * = old|stash, else stash).
     */
    public static native void ppo_set_grpo_schedule(int schedule);
}
