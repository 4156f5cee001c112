package dev.sa2va.rl;

import dev.sa2va.core.KernelCall;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.kernels.RlKernels;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Generalized Advantage Estimation on time-major rollouts {@code [T, N]} in one kernel launch (two with
 * normalisation), with terminations, truncations and a bootstrap value:
 * <pre>
 *   next_t  = V[t+1] (t &lt; T-1), bootstrap (t = T-1);  next_t = truncValues[t] where truncated[t]
 *   delta_t = r_t + gamma (1 - terminated_t) next_t - V_t
 *   A_t     = delta_t + gamma lambda (1 - terminated_t)(1 - truncated_t) A_{t+1},   returns = A + V
 * </pre>
 * {@code terminated_t}/{@code truncated_t}: the episode ended after step t (gymnasium's flags of the step). CleanRL's
 * ppo.py stores {@code dones[t]} = "observation t starts an episode": pass {@code terminated[t] = dones[t+1]} and
 * {@code next_done} for the last step (and no truncation) to get its numbers exactly.
 *
 * <p>The CUDA schedule is chosen by shape ({@link Schedule#AUTO}): up to 8M elements a register-resident chunked scan
 * (every environment's T steps cut into chunks of 4-16 steps, one thread each); beyond, one thread per environment
 * walking back over T when N is large, a two-sweep chunked scan when N is small (see native/src/main/cpp/rl/gae.h).
 */
public final class Gae {
    private Gae() {
    }

    /**
     * CUDA schedule (the CPU ignores it). {@code REGISTER_SCAN}: each thread loads a chunk of up to 16 steps of one
     * environment into registers, the chunks are combined by a scan in shared memory (one read of the inputs; with
     * normalisation a cooperative launch, still one); {@code AUTO} takes it up to 8M elements. {@code WARP_SCAN}: one
     * block per environment, the lanes of a warp on consecutive steps (coalesced loads of narrow time rows), strips
     * combined by warp shuffles; {@code AUTO} takes it for T &gt;= 1024 and N &lt;= 16 (T &lt;= 8192; for longer T
     * {@code WARP_SCAN} runs the register scan). {@code CHUNKED} is the older two-sweep chunked scan, {@code PER_ENV}
     * one thread per environment.
     */
    public enum Schedule { AUTO, PER_ENV, CHUNKED, REGISTER_SCAN, WARP_SCAN }

    /**
     * @param gamma     discount in [0, 1]
     * @param lambda    GAE lambda in [0, 1]
     * @param normalize replace A by (A - mean) / (std + eps) over all T*N entries (Bessel std, as torch.std);
     *                  returns are computed before
     * @param eps       added to the std (CleanRL: 1e-8)
     */
    public record Options(double gamma, double lambda, boolean normalize, double eps, Schedule schedule) {
        /** CleanRL's ppo.py: gamma 0.99, lambda 0.95 (it normalises per minibatch, in the loss: see {@link PpoLoss}). */
        public static final Options CLEANRL = new Options(0.99, 0.95, false, 1e-8, Schedule.AUTO);

        public Options {
            if (!(gamma >= 0 && gamma <= 1)) {
                throw new IllegalArgumentException("gamma: must be in [0, 1], got " + gamma);
            }
            if (!(lambda >= 0 && lambda <= 1)) {
                throw new IllegalArgumentException("lambda: must be in [0, 1], got " + lambda);
            }
            if (!(eps >= 0) || !Double.isFinite(eps)) {
                throw new IllegalArgumentException("eps: must be finite and >= 0, got " + eps);
            }
            if (schedule == null) {
                throw new IllegalArgumentException("schedule: null");
            }
        }

        public Options withGammaLambda(double gamma, double lambda) {
            return new Options(gamma, lambda, normalize, eps, schedule);
        }

        public Options withNormalize(boolean normalize, double eps) {
            return new Options(gamma, lambda, normalize, eps, schedule);
        }

        public Options withSchedule(Schedule s) {
            return new Options(gamma, lambda, normalize, eps, s);
        }
    }

    /**
     * The rollout. {@code rewards}, {@code values}: float32 {@code [T, N]}; {@code terminated}: uint8 / bool / float32
     * {@code [T, N]} (non-zero = true); optional {@code truncated} (same types) with {@code truncValues} (float32
     * {@code [T, N]}, the value of the final observation where truncated; other entries are not read); optional
     * {@code bootstrap} float32 {@code [N]} (value of the observation after step T-1; absent = 0).
     */
    public record Rollout(Tensor rewards, Tensor values, Tensor terminated, Tensor truncated, Tensor truncValues,
                         Tensor bootstrap) {
        public static Rollout of(Tensor rewards, Tensor values, Tensor terminated, Tensor bootstrap) {
            return new Rollout(rewards, values, terminated, null, null, bootstrap);
        }

        public Rollout withTruncation(Tensor truncated, Tensor truncValues) {
            return new Rollout(rewards, values, terminated, truncated, truncValues, bootstrap);
        }
    }

    /**
     * @param advantages float32 {@code [T, N]} (normalised if asked)
     * @param returns    float32 {@code [T, N]} = A + V (before normalisation)
     * @param normStats  float32 {@code [2]} = {mean, std} of the raw advantages when normalised, else null
     */
    public record Result(Tensor advantages, Tensor returns, Tensor normStats) {
    }

    public static Result compute(Rollout r, Options o) {
        return compute(r, o, null);
    }

    /** {@link #compute(Rollout, Options)} into {@code reuse}'s tensors when they fit (e.g. last iteration's result). */
    public static Result compute(Rollout r, Options o, Result reuse) {
        if (r == null || o == null) {
            throw new IllegalArgumentException("rollout and options must not be null");
        }
        TensorCheck.of("rewards", r.rewards()).dtype(ScalarType.Float).dims(2).nonEmpty().contiguous();
        int dev = KernelCall.device("rewards", r.rewards());
        long t = r.rewards().size(0), n = r.rewards().size(1);
        check("values", r.values(), dev, ScalarType.Float).sameShape("rewards", r.rewards());
        check("terminated", r.terminated(), dev, ScalarType.Byte, ScalarType.Bool, ScalarType.Float)
                .sameShape("rewards", r.rewards());
        if ((r.truncated() == null) != (r.truncValues() == null)) {
            throw new IllegalArgumentException("truncated and truncValues go together (truncValues = value of the "
                    + "final observation of a truncated episode)");
        }
        if (r.truncated() != null) {
            check("truncated", r.truncated(), dev, ScalarType.Byte, ScalarType.Bool, ScalarType.Float)
                    .sameShape("rewards", r.rewards());
            check("truncValues", r.truncValues(), dev, ScalarType.Float).sameShape("rewards", r.rewards());
        }
        if (r.bootstrap() != null) {
            check("bootstrap", r.bootstrap(), dev, ScalarType.Float).shape(n);
        }
        if (o.normalize() && t * n < 2) {
            throw new IllegalArgumentException("normalize: needs at least 2 advantages for a (Bessel) std, got T*N = "
                    + t * n);
        }
        Tensor adv = KernelCall.reuse(reuse == null ? null : reuse.advantages(), ScalarType.Float, dev, t, n);
        Tensor ret = KernelCall.reuse(reuse == null ? null : reuse.returns(), ScalarType.Float, dev, t, n);
        Tensor stats = o.normalize() ? KernelCall.reuse(reuse == null ? null : reuse.normStats(), ScalarType.Float, dev, 2)
                : null;
        Pointer trunc = r.truncated() == null ? null : r.truncated().data_ptr();
        int truncDtype = r.truncated() == null ? 0 : flagDtype(r.truncated());
        Pointer tv = r.truncValues() == null ? null : r.truncValues().data_ptr();
        Pointer boot = r.bootstrap() == null ? null : r.bootstrap().data_ptr();
        Pointer st = stats == null ? null : stats.data_ptr();
        if (dev >= 0) {
            Pointer stream = KernelCall.stream(dev, "gae_cuda");
            RlKernels.gae_cuda(r.rewards().data_ptr(), r.values().data_ptr(), r.terminated().data_ptr(),
                    flagDtype(r.terminated()), trunc, truncDtype, tv, boot, t, n, (float) o.gamma(), (float) o.lambda(),
                    (float) o.eps(), adv.data_ptr(), ret.data_ptr(), st, o.schedule().ordinal(), stream);
        } else {
            RlKernels.gae_cpu(r.rewards().data_ptr(), r.values().data_ptr(), r.terminated().data_ptr(),
                    flagDtype(r.terminated()), trunc, truncDtype, tv, boot, t, n, (float) o.gamma(), (float) o.lambda(),
                    (float) o.eps(), adv.data_ptr(), ret.data_ptr(), st);
        }
        return reuse != null && reuse.advantages() == adv && reuse.returns() == ret && reuse.normStats() == stats ? reuse
                : new Result(adv, ret, stats);
    }

    /** {@link #compute(Rollout, Options)} with CleanRL's gamma / lambda and no truncation. */
    public static Result compute(Tensor rewards, Tensor values, Tensor terminated, Tensor bootstrap) {
        return compute(Rollout.of(rewards, values, terminated, bootstrap), Options.CLEANRL);
    }

    /** Chunks per environment the CUDA kernel uses for this shape (1 = one thread per environment). */
    public static int cudaChunks(long t, long n, Schedule s) {
        return RlKernels.gae_cuda_chunks(t, n, s.ordinal());
    }

    private static TensorCheck check(String name, Tensor x, int dev, ScalarType... types) {
        TensorCheck c = TensorCheck.of(name, x).dtype(types).contiguous();
        KernelCall.requireDevice(name, x, "rewards", dev);
        return c;
    }

    /** bool is one byte of 0/1 like uint8. */
    private static int flagDtype(Tensor x) {
        return Torch.dtype(x) == ScalarType.Float ? dev.sa2va.kernels.DType.F32 : dev.sa2va.kernels.DType.U8;
    }
}
