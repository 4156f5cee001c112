package dev.sa2va.bench;

import dev.sa2va.core.Torch;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
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
 * The frozen linear layer alone from Java (libtorch, cuBLAS), the yardstick of {@link LoraBench}: forward
 * {@code x·Wᵀ} and the only backward GEMM of a frozen layer, {@code dX = dY·W}. Same grid and method as LoraBench.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 1, time = 200, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 3, time = 200, timeUnit = TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xmx8g"})
public class LoraBaseBench {
    static final int REPS = LoraBench.REPS;

    @Param({"896x896", "896x4864", "4864x896", "2048x2048", "2048x11008", "4096x4096", "4096x14336"})
    public String shape;

    @Param({"4096", "2600"})
    public int tokens;

    Tensor weight, x, dy;

    @Setup(Level.Trial)
    public void setup() {
        Device d = BenchSupport.cudaOrFail();
        long[] s = BenchSupport.shape(shape);
        Torch.seed(0);
        weight = LoraBench.LoraShapes.weight(s[1], s[0], d);
        x = Torch.randn(ScalarType.Float, d, tokens, s[0]).to(ScalarType.BFloat16);
        dy = Torch.randn(ScalarType.Float, d, tokens, s[1]).to(ScalarType.BFloat16);
        for (int i = 0; i < 3; i++) {
            torch.linear(x, weight).close();
            dy.mm(weight).close();
        }
        BenchSupport.sync();
    }

    @TearDown(Level.Trial)
    public void free() {
        for (Tensor t : new Tensor[] {weight, x, dy}) {
            t.close();
        }
    }

    /** y = x·Wᵀ (torch.linear, as nn.Linear without bias). */
    @Benchmark
    @OperationsPerInvocation(REPS)
    public void linear() {
        try (PointerScope scope = new PointerScope()) {
            for (int i = 0; i < REPS; i++) {
                torch.linear(x, weight).close();
            }
            BenchSupport.sync();
        }
    }

    /** dX = dY·W, the backward of a frozen linear layer. */
    @Benchmark
    @OperationsPerInvocation(REPS)
    public void backwardDx() {
        try (PointerScope scope = new PointerScope()) {
            for (int i = 0; i < REPS; i++) {
                dy.mm(weight).close();
            }
            BenchSupport.sync();
        }
    }
}
