package dev.sa2va.bench;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.metrics.MaskMetrics;
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
 * Fused mask statistics (TP/FP/FN/TN of thresholded logits vs uint8 targets), CUDA and CPU, with the device's
 * copy bandwidth measured on the same bytes as the yardstick. Bytes per call = N·P·(sizeof(logit) + 1).
 *
 * <p>GPU methods launch {@value #REPS} calls and synchronise once, so the time per operation is device time
 * plus 1/{@value #REPS} of one synchronisation.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx4g"})
public class MaskStatsBench {
    static final int REPS = 20;

    /** Samples x pixels: 4 x 512² (1 Mpx), 8 x 1024² (8.4 Mpx), 32 x 1024² (33.5 Mpx, > L2). */
    @Param({"4x262144", "8x1048576", "32x1048576"})
    public String size;

    @Param({"bf16", "f32"})
    public String dtype;

    Tensor logits, targets, copySrc, copyDst;

    void allocate(Device d) {
        long[] s = BenchSupport.shape(size);
        ScalarType st = BenchSupport.dtype(dtype);
        Torch.seed(0);
        logits = Torch.randn(ScalarType.Float, d, s).to(st);
        targets = Torch.rand(ScalarType.Float, d, s).gt(Torch.scalar(0.8)).to(ScalarType.Byte);
        long bytes = s[0] * s[1] * (BenchSupport.elementSize(st) + 1L);
        copySrc = Torch.rand(ScalarType.Float, d, bytes / 4);
        copyDst = Torch.empty(ScalarType.Float, d, bytes / 4);
    }

    @TearDown(Level.Trial)
    public void free() {
        for (Tensor t : new Tensor[] {logits, targets, copySrc, copyDst}) {
            if (t != null) {
                t.close();
            }
        }
    }

    /** CUDA kernel. */
    public static class Cuda extends MaskStatsBench {
        @Setup(Level.Trial)
        public void setup() {
            allocate(BenchSupport.cudaOrFail());
            MaskMetrics.confusion(logits, targets);
            BenchSupport.sync();
        }

        @Benchmark
        @OperationsPerInvocation(REPS)
        public void maskStats() {
            try (PointerScope scope = new PointerScope()) {
                for (int i = 0; i < REPS; i++) {
                    MaskMetrics.confusion(logits, targets);
                }
                BenchSupport.sync();
            }
        }

        /** Device-to-device copy of the same number of bytes (read + write = 2x the bytes). */
        @Benchmark
        @OperationsPerInvocation(REPS)
        public void copyBaseline() {
            BenchSupport.copies(copyDst, copySrc, REPS);
        }
    }

    /** C++ CPU kernel (threads: SA2VA_NUM_THREADS). */
    public static class Cpu extends MaskStatsBench {
        @Setup(Level.Trial)
        public void setup() {
            allocate(Devices.cpu());
        }

        @Benchmark
        public void maskStats() {
            try (PointerScope scope = new PointerScope()) {
                MaskMetrics.confusion(logits, targets);
            }
        }
    }
}
