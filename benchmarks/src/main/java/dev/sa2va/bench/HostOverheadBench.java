package dev.sa2va.bench;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.metrics.MaskMetrics;
import dev.sa2va.metrics.MaskTargets;
import dev.sa2va.rl.Gae;
import dev.sa2va.rl.GroupAdvantages;
import dev.sa2va.rl.PpoLoss;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

/**
 * Host cost of one call of each Java API on tiny CPU tensors (a few elements, so the C++ kernel itself costs well
 * under a microsecond): argument checks, JNI, output allocation. On a GPU this time is spent before every launch
 * (plus the stream lookup and the launch itself), so it bounds how fast small problems can go.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx1g"})
public class HostOverheadBench {
    Tensor logits, targets, logp, rewards;
    MaskTargets maskTargets;
    Gae.Rollout rollout;
    PpoLoss.Batch batch;
    MaskMetrics.Result evalOut;
    Gae.Result gaeOut;
    GroupAdvantages.Result groupOut;
    PpoLoss.Result ppoOut;

    @Setup
    public void setup() {
        Device cpu = Devices.cpu();
        Torch.seed(0);
        logits = Torch.randn(ScalarType.Float, cpu, 1, 8);
        targets = Torch.zeros(ScalarType.Byte, cpu, 1, 8);
        maskTargets = MaskTargets.of(targets);
        rollout = Gae.Rollout.of(Torch.randn(ScalarType.Float, cpu, 4, 2), Torch.randn(ScalarType.Float, cpu, 4, 2),
                Torch.zeros(ScalarType.Byte, cpu, 4, 2), null);
        logp = Torch.randn(ScalarType.Float, cpu, 2, 4);
        batch = PpoLoss.Batch.of(logp, logp, Torch.randn(ScalarType.Float, cpu, 2, 4));
        rewards = Torch.rand(ScalarType.Float, cpu, 8);
        evalOut = MaskMetrics.evaluate(logits, maskTargets, MaskMetrics.Spec.DEFAULT);
        gaeOut = Gae.compute(rollout, Gae.Options.CLEANRL);
        groupOut = GroupAdvantages.grpo(rewards, 4);
        ppoOut = PpoLoss.compute(batch, PpoLoss.Config.TRL_GRPO);
    }

    @Benchmark
    public void confusion(Blackhole bh) {
        try (PointerScope s = new PointerScope()) {
            bh.consume(MaskMetrics.confusion(logits, targets));
        }
    }

    @Benchmark
    public void evaluate(Blackhole bh) {
        try (PointerScope s = new PointerScope()) {
            bh.consume(MaskMetrics.evaluate(logits, maskTargets, MaskMetrics.Spec.DEFAULT));
        }
    }

    /** Into the previous call's outputs: no allocation. */
    @Benchmark
    public void evaluateReuse(Blackhole bh) {
        try (PointerScope s = new PointerScope()) {
            bh.consume(MaskMetrics.evaluate(logits, maskTargets, MaskMetrics.Spec.DEFAULT, evalOut));
        }
    }

    @Benchmark
    public void gaeReuse(Blackhole bh) {
        try (PointerScope s = new PointerScope()) {
            bh.consume(Gae.compute(rollout, Gae.Options.CLEANRL, gaeOut));
        }
    }

    @Benchmark
    public void groupAdvantagesReuse(Blackhole bh) {
        try (PointerScope s = new PointerScope()) {
            bh.consume(GroupAdvantages.compute(rewards, 4, GroupAdvantages.Mode.GRPO, GroupAdvantages.TRL_EPS, groupOut));
        }
    }

    @Benchmark
    public void ppoLossReuse(Blackhole bh) {
        try (PointerScope s = new PointerScope()) {
            bh.consume(PpoLoss.compute(batch, PpoLoss.Config.TRL_GRPO, ppoOut));
        }
    }

    @Benchmark
    public void gae(Blackhole bh) {
        try (PointerScope s = new PointerScope()) {
            bh.consume(Gae.compute(rollout, Gae.Options.CLEANRL));
        }
    }

    @Benchmark
    public void groupAdvantages(Blackhole bh) {
        try (PointerScope s = new PointerScope()) {
            bh.consume(GroupAdvantages.grpo(rewards, 4));
        }
    }

    @Benchmark
    public void ppoLoss(Blackhole bh) {
        try (PointerScope s = new PointerScope()) {
            bh.consume(PpoLoss.compute(batch, PpoLoss.Config.TRL_GRPO));
        }
    }

    /** One libtorch allocation the way Torch.empty does it (new TensorOptions, Device, optionals each call). */
    @Benchmark
    public void torchEmpty(Blackhole bh) {
        try (PointerScope s = new PointerScope()) {
            bh.consume(Torch.empty(ScalarType.Float, Devices.cpu(), 6, 1));
        }
    }
}
