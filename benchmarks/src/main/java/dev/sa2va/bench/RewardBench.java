package dev.sa2va.bench;

import dev.sa2va.core.Torch;
import dev.sa2va.metrics.BitMasks;
import dev.sa2va.metrics.MaskMetrics;
import dev.sa2va.metrics.MaskTargets;
import dev.sa2va.rl.MaskPolicy;
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
 * Mask rewards on the GPU: the statistics / reward pass ({@link MaskMetrics#evaluate}), the RL "sample and score"
 * pass ({@link MaskPolicy#sample} with targets) and a device copy of the same number of bytes as the yardstick.
 *
 * <p>{@code form}: bf16 logits with uint8 targets (3 B/pixel read) or with bit-packed targets (2.125 B/pixel).
 * Bytes per call: evaluate and copy = N·P·(2 + target bytes); sample = the same + N·P/8 written (the sampled bits).
 * Each invocation issues {@value #REPS} calls and synchronises once (as MaskStatsBench).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx4g"})
public class RewardBench {
    static final int REPS = 20;

    /** N x P: 8 x 512² (6.3 MB with u8 targets), 16 x 512² (12.6 MB), 32 x 1024² (100 MB). */
    @Param({"8x262144", "16x262144", "32x1048576"})
    public String size;

    @Param({"bf16-u8", "bf16-bits"})
    public String form;

    Tensor logits, copySrc, copyDst;
    MaskTargets targets;
    MaskMetrics.Result evalOut;
    MaskPolicy.Sample sampleOut;

    @Setup(Level.Trial)
    public void setup() {
        Device d = BenchSupport.cudaOrFail();
        long[] s = BenchSupport.shape(size);
        Torch.seed(0);
        logits = Torch.randn(ScalarType.BFloat16, d, s);
        Tensor y = Torch.rand(ScalarType.Float, d, s).lt(Torch.scalar(0.1)).to(ScalarType.Byte);
        boolean bits = form.endsWith("bits");
        targets = bits ? MaskTargets.of(BitMasks.pack(y, "targets")) : MaskTargets.of(y);
        long bytes = s[0] * s[1] * 2 + (bits ? s[0] * s[1] / 8 : s[0] * s[1]);
        copySrc = Torch.rand(ScalarType.Float, d, bytes / 4);
        copyDst = Torch.empty(ScalarType.Float, d, bytes / 4);
        evalOut = MaskMetrics.evaluate(logits, targets, MaskMetrics.Spec.DEFAULT);
        sampleOut = MaskPolicy.sample(logits, 1.0, 1, 0, true, targets, MaskMetrics.Spec.DEFAULT);
        BenchSupport.sync();
    }

    @TearDown(Level.Trial)
    public void free() {
        for (Tensor t : new Tensor[] {logits, copySrc, copyDst, evalOut.stats(), evalOut.scores(),
            sampleOut.masks().bits(), sampleOut.policy()}) {
            if (t != null) {
                t.close();
            }
        }
    }

    /**
     * TP/FP/FN/TN, soft sums, Dice/Recall/Precision/IoU/Tversky and the reward per sample: one launch, into the
     * previous call's outputs (as a training loop would).
     */
    @Benchmark
    @OperationsPerInvocation(REPS)
    public void evaluate() {
        try (PointerScope scope = new PointerScope()) {
            for (int i = 0; i < REPS; i++) {
                MaskMetrics.evaluate(logits, targets, MaskMetrics.Spec.DEFAULT, evalOut);
            }
            BenchSupport.sync();
        }
    }

    /** The same with new output tensors every call (two allocations through JNI). */
    @Benchmark
    @OperationsPerInvocation(REPS)
    public void evaluateAlloc() {
        try (PointerScope scope = new PointerScope()) {
            for (int i = 0; i < REPS; i++) {
                MaskMetrics.evaluate(logits, targets, MaskMetrics.Spec.DEFAULT);
            }
            BenchSupport.sync();
        }
    }

    /** Bernoulli samples (packed), log pi, entropy and each sample's reward: one launch, outputs reused. */
    @Benchmark
    @OperationsPerInvocation(REPS)
    public void sampleAndScore() {
        try (PointerScope scope = new PointerScope()) {
            for (int i = 0; i < REPS; i++) {
                MaskPolicy.sample(logits, 1.0, 1, i, true, targets, MaskMetrics.Spec.DEFAULT, sampleOut);
            }
            BenchSupport.sync();
        }
    }

    /** Device-to-device copy of the bytes evaluate reads (read + write = 2x those bytes). */
    @Benchmark
    @OperationsPerInvocation(REPS)
    public void copyBaseline() {
        BenchSupport.copies(copyDst, copySrc, REPS);
    }
}
