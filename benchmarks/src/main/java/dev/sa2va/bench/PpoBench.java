package dev.sa2va.bench;

import dev.sa2va.core.Torch;
import dev.sa2va.rl.PpoLoss;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The fused PPO loss on the GPU against a device copy of the same bytes.
 * {@code cleanrl}: per-token logp, logp_old, advantages (normalised), values, values_old, returns, entropy read
 * (28 B/token), dlogp, dvalue, dentropy written (12 B/token), one launch plus the normalisation pre-pass.
 * {@code grpo}: logp, logp_old, a uint8 mask, reference logp (13 B/token) and one advantage per row read, dlogp
 * written (4 B/token), token-mean with the mask (pre-pass for the counts).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx4g"})
public class PpoBench {
    static final int REPS = 20;

    /** rows x tokens: 1M, 16.8M and 33.5M tokens. */
    @Param({"256x4096", "4096x4096", "8192x4096"})
    public String size;

    @Param({"cleanrl", "grpo"})
    public String config;

    PpoLoss.Batch batch;
    PpoLoss.Config cfg;
    PpoLoss.Result out;
    Tensor copySrc, copyDst;

    static long bytesPerToken(String config) {
        return config.equals("cleanrl") ? 40 : 17;
    }

    /** A batch and configuration of one benchmark case (shared with RlDeviceTimes). */
    record Inputs(PpoLoss.Batch batch, PpoLoss.Config config) {
    }

    /**
     * Random inputs of shape {@code s} (rows x tokens) for {@code config}: {@code cleanrl} per-token values and
     * entropy; {@code grpo} one advantage per row, a 90% mask and reference log-probabilities with KL 0.04.
     */
    static Inputs inputs(String config, Device d, long[] s) {
        Tensor logp = Torch.randn(ScalarType.Float, d, s).sub(Torch.scalar(2.0));
        Tensor old = logp.add(Torch.randn(ScalarType.Float, d, s).mul(Torch.scalar(0.1)));
        if (config.equals("cleanrl")) {
            return new Inputs(PpoLoss.Batch.of(logp, old, Torch.randn(ScalarType.Float, d, s))
                    .withValues(Torch.randn(ScalarType.Float, d, s), Torch.randn(ScalarType.Float, d, s),
                            Torch.randn(ScalarType.Float, d, s))
                    .withEntropy(Torch.rand(ScalarType.Float, d, s)), PpoLoss.Config.CLEANRL);
        }
        if (!config.equals("grpo")) {
            throw new IllegalArgumentException("config: cleanrl or grpo, got " + config);
        }
        return new Inputs(PpoLoss.Batch.of(logp, old, Torch.randn(ScalarType.Float, d, s[0]))
                .withMask(Torch.rand(ScalarType.Float, d, s).lt(Torch.scalar(0.9)).to(ScalarType.Byte))
                .withReference(logp.add(Torch.randn(ScalarType.Float, d, s).mul(Torch.scalar(0.1)))),
                PpoLoss.Config.TRL_GRPO.withKl(0.04));
    }

    @Setup(Level.Trial)
    public void setup() {
        Device d = BenchSupport.cudaOrFail();
        long[] s = BenchSupport.shape(size);
        Torch.seed(0);
        Inputs in = inputs(config, d, s);
        batch = in.batch();
        cfg = in.config();
        long half = s[0] * s[1] * bytesPerToken(config) / 2 / 4;
        copySrc = Torch.rand(ScalarType.Float, d, half);
        copyDst = Torch.empty(ScalarType.Float, d, half);
        out = PpoLoss.compute(batch, cfg);
        BenchSupport.sync();
    }

    @TearDown(Level.Trial)
    public void free() {
        // -f 0 runs every trial in one JVM: give the GPU memory back now, not at some later GC
        for (Tensor t : new Tensor[] {batch.logp(), batch.logpOld(), batch.advantages(), batch.mask(), batch.values(),
            batch.valuesOld(), batch.returns(), batch.entropy(), batch.refLogp(), out.scalars(), out.dlogp(),
            out.dvalue(), out.dentropy(), copySrc, copyDst}) {
            if (t != null) {
                t.close();
            }
        }
    }

    @Benchmark
    @OperationsPerInvocation(REPS)
    public void ppoLoss() {
        try (PointerScope scope = new PointerScope()) {
            for (int i = 0; i < REPS; i++) {
                PpoLoss.compute(batch, cfg, out);
            }
            BenchSupport.sync();
        }
    }

    /** A device copy moving the same bytes per token (half read, half written). */
    @Benchmark
    @OperationsPerInvocation(REPS)
    public void copyBaseline() {
        BenchSupport.copies(copyDst, copySrc, REPS);
    }
}
