package dev.sa2va.bench;

import dev.sa2va.core.Torch;
import dev.sa2va.lora.LoraLinear;
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
 * The LoRA layer on CUDA in bf16 at issue 3's grid (shapes of Qwen2-0.5B/1.5B, Llama-7B/8B projections; T = 4096 and
 * T = 2600 tokens, a Sa2VA-1B prompt; r = 8..128; Sa2VA's dropout 0.05), training forward and forward + backward.
 * {@link LoraBaseBench} times the frozen layer alone on the same grid.
 *
 * <p>Each invocation issues {@value #REPS} calls and synchronises once, so a score is the time per call as a Java
 * training loop sees it: device time, or host time per call where that is larger (small shapes). Device time alone
 * comes from {@link LoraDeviceTimes}. Outputs are released after every call so the allocator reuses their memory,
 * as in a training step.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 1, time = 200, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 3, time = 200, timeUnit = TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xmx8g"})
public class LoraBench {
    static final int REPS = 20;

    /** d_in x d_out. */
    @Param({"896x896", "896x4864", "4864x896", "2048x2048", "2048x11008", "4096x4096", "4096x14336"})
    public String shape;

    @Param({"8", "16", "64", "128"})
    public int rank;

    @Param({"4096", "2600"})
    public int tokens;

    @Param({"0.05"})
    public double dropout;

    LoraLinear layer;
    Tensor weight, x, dy;

    @Setup(Level.Trial)
    public void setup() {
        Device d = BenchSupport.cudaOrFail();
        long[] s = BenchSupport.shape(shape);
        Torch.seed(0);
        weight = LoraShapes.weight(s[1], s[0], d);
        layer = LoraShapes.layer(weight, rank, dropout, d);
        x = Torch.randn(ScalarType.Float, d, tokens, s[0]).to(ScalarType.BFloat16);
        dy = Torch.randn(ScalarType.Float, d, tokens, s[1]).to(ScalarType.BFloat16);
        for (int i = 0; i < 3; i++) {
            fwdBwdOnce();
        }
        BenchSupport.sync();
    }

    void fwdBwdOnce() {
        try (PointerScope scope = new PointerScope()) {
            LoraLinear.Saved saved = layer.forwardTrain(x);
            Tensor dx = layer.backward(saved, dy);
            dx.close();
            saved.output().close();
            saved.close();
        }
    }

    @TearDown(Level.Trial)
    public void free() {
        layer.close();
        for (Tensor t : new Tensor[] {weight, x, dy}) {
            t.close();
        }
    }

    /** Training forward: y and the saved activation, dropout on. */
    @Benchmark
    @OperationsPerInvocation(REPS)
    public void forward() {
        try (PointerScope scope = new PointerScope()) {
            for (int i = 0; i < REPS; i++) {
                LoraLinear.Saved saved = layer.forwardTrain(x);
                saved.output().close();
                saved.close();
            }
            BenchSupport.sync();
        }
    }

    /** Training forward + backward (dX, dA, dB accumulated). */
    @Benchmark
    @OperationsPerInvocation(REPS)
    public void forwardBackward() {
        try (PointerScope scope = new PointerScope()) {
            for (int i = 0; i < REPS; i++) {
                LoraLinear.Saved saved = layer.forwardTrain(x);
                Tensor dx = layer.backward(saved, dy);
                dx.close();
                saved.output().close();
                saved.close();
            }
            BenchSupport.sync();
        }
    }

    /** Shared setup of the LoRA benchmarks. */
    static final class LoraShapes {
        private LoraShapes() {
        }

        static Tensor weight(long dOut, long dIn, Device d) {
            return Torch.randn(ScalarType.Float, d, dOut, dIn).mul(Torch.scalar(1 / Math.sqrt(dIn))).to(ScalarType.BFloat16);
        }

        /** Non-zero A and B (a trained adapter), alpha = 2r as in Sa2VA. */
        static LoraLinear layer(Tensor w, int rank, double dropout, Device d) {
            Tensor a = Torch.randn(ScalarType.Float, d, rank, w.size(1)).mul(Torch.scalar(1 / Math.sqrt(w.size(1))));
            Tensor b = Torch.randn(ScalarType.Float, d, w.size(0), rank).mul(Torch.scalar(0.01));
            LoraLinear l = LoraLinear.builder(w).weights(a, b).alpha(2.0 * rank).dropout(dropout).seed(1).build();
            a.close();
            b.close();
            return l;
        }
    }
}
