package dev.sa2va.bench;

import dev.sa2va.core.Torch;
import dev.sa2va.rl.Gae;
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
 * GAE on the GPU, one launch per call (schedule chosen by shape; outputs reused), against a device copy of the same
 * bytes.
 * Bytes per call = T·N·17: rewards, values (fp32) and terminated (uint8) read, advantages and returns (fp32) written.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx4g"})
public class GaeBench {
    static final int REPS = 20;

    /** T x N: CleanRL Atari, SB3 default, Isaac-like, TRL-like, 1M elements, 67M elements. */
    @Param({"128x8", "2048x16", "32x4096", "1024x512", "1024x1024", "2048x32768"})
    public String size;

    Gae.Rollout rollout;
    Gae.Result out;
    Tensor copySrc, copyDst;

    @Setup(Level.Trial)
    public void setup() {
        Device d = BenchSupport.cudaOrFail();
        long[] s = BenchSupport.shape(size);
        Torch.seed(0);
        Tensor r = Torch.randn(ScalarType.Float, d, s), v = Torch.randn(ScalarType.Float, d, s);
        Tensor done = Torch.rand(ScalarType.Float, d, s).lt(Torch.scalar(0.01)).to(ScalarType.Byte);
        rollout = Gae.Rollout.of(r, v, done, Torch.randn(ScalarType.Float, d, s[1]));
        long half = s[0] * s[1] * 17 / 2 / 4;  // copy reads + writes 17 B per element in total
        copySrc = Torch.rand(ScalarType.Float, d, Math.max(1, half));
        copyDst = Torch.empty(ScalarType.Float, d, Math.max(1, half));
        out = Gae.compute(rollout, Gae.Options.CLEANRL);
        BenchSupport.sync();
    }

    @TearDown(Level.Trial)
    public void free() {
        for (Tensor t : new Tensor[] {rollout.rewards(), rollout.values(), rollout.terminated(), rollout.bootstrap(),
            copySrc, copyDst, out.advantages(), out.returns()}) {
            t.close();
        }
    }

    @Benchmark
    @OperationsPerInvocation(REPS)
    public void gae() {
        try (PointerScope scope = new PointerScope()) {
            for (int i = 0; i < REPS; i++) {
                Gae.compute(rollout, Gae.Options.CLEANRL, out);
            }
            BenchSupport.sync();
        }
    }

    /** A device copy moving the same 17 B per element (half read, half written). */
    @Benchmark
    @OperationsPerInvocation(REPS)
    public void copyBaseline() {
        BenchSupport.copies(copyDst, copySrc, REPS);
    }
}
