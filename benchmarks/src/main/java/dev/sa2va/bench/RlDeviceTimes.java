package dev.sa2va.bench;

import dev.sa2va.core.Torch;
import dev.sa2va.kernels.MaskStatsKernels;
import dev.sa2va.kernels.NativeLibrary;
import dev.sa2va.kernels.RlKernels;
import dev.sa2va.metrics.BitMasks;
import dev.sa2va.metrics.MaskMetrics;
import dev.sa2va.metrics.MaskTargets;
import dev.sa2va.rl.Gae;
import dev.sa2va.rl.MaskPolicy;
import dev.sa2va.rl.PpoLoss;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Device time and host time per call of the RL kernels on the shapes of RewardBench, MaskStatsBench, GaeBench and
 * PpoBench, to tell the kernel from the host cost that JMH's per-call time also contains.
 *
 * <p>Device and host time per call: {@link BenchSupport.DeviceTimer} ({@value #REPS} calls queued behind a GPU sleep,
 * median of {@value #REPEATS}), as LoraDeviceTimes. Small inputs stay in L2 across
 * calls, as in the JMH benchmarks.
 *
 * <pre>java dev.sa2va.bench.RlDeviceTimes OUT.jsonl [--only OP] [--size NxP]</pre>
 * {@code --only} / {@code --size}: just that op ({@code evaluate}, {@code confusion}, {@code gae}, {@code ppo}, ...)
 * and shape, e.g. under ncu.
 * One JSON object per line: {"op", "shape", "form", "device_us", "host_us", "bytes"}; a table on stdout. Op
 * {@code evaluate/waves=W}: the reward kernel launched with W waves of blocks instead of one (MaskStatsKernels
 * .mask_set_waves), an A/B on the same card; {@code evaluate/pdl=0}, {@code gae/pdl=0}: launched without
 * programmatic dependent launch (NativeLibrary.rl_set_pdl), which the default uses on sm_90+.
 */
public final class RlDeviceTimes {
    static final int REPS = 20, REPEATS = 5;
    static String only, onlySize;

    static boolean skip(String op, String size) {
        return (only != null && !op.equals(only)) || (onlySize != null && !size.equals(onlySize));
    }

    private final PrintWriter out;
    private final BenchSupport.DeviceTimer timer;

    private RlDeviceTimes(Device device, PrintWriter out) {
        this.out = out;
        this.timer = new BenchSupport.DeviceTimer(REPS, REPEATS);
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 1) {
            System.err.println("usage: RlDeviceTimes OUT.jsonl");
            System.exit(2);
        }
        Device d = BenchSupport.cudaOrFail();
        Path file = Path.of(args[0]);
        for (int i = 1; i + 1 < args.length; i += 2) {
            if (args[i].equals("--only")) {
                only = args[i + 1];
            } else if (args[i].equals("--size")) {
                onlySize = args[i + 1];
            }
        }
        try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(file, StandardCharsets.UTF_8))) {
            new RlDeviceTimes(d, w).run(d);
        }
        System.out.println("wrote " + file);
    }

    interface Call extends BenchSupport.Call {
    }

    /** {device µs, host µs} per call. */
    double[] micros(Call call) {
        return timer.micros(call);
    }

    void emit(String op, String shape, String form, Call call, long bytes) {
        if (skip(op, shape)) {
            return;
        }
        double[] t = micros(call);
        double gbs = bytes / (t[0] * 1e3);
        out.printf(Locale.ROOT, "{\"op\": \"%s\", \"shape\": \"%s\", \"form\": \"%s\", \"device_us\": %.2f, "
                + "\"host_us\": %.2f, \"bytes\": %d}%n", op, shape, form, t[0], t[1], bytes);
        out.flush();
        System.out.printf(Locale.ROOT, "%-16s %-12s %-10s device %8.2f us  host %6.2f us  %7.0f GB/s%n", op, shape,
                form, t[0], t[1], gbs);
    }

    void run(Device d) {
        Torch.seed(0);
        for (String size : new String[] {"8x262144", "16x262144", "32x1048576"}) {
            if (onlySize != null && !size.equals(onlySize)) {
                continue;
            }
            long[] s = BenchSupport.shape(size);
            try (PointerScope scope = new PointerScope()) {
                Tensor logits = Torch.randn(ScalarType.BFloat16, d, s);
                Tensor y = Torch.rand(ScalarType.Float, d, s).lt(Torch.scalar(0.1)).to(ScalarType.Byte);
                Tensor copySrc = Torch.rand(ScalarType.Float, d, s[0] * s[1] * 3 / 4);
                Tensor copyDst = Torch.empty(ScalarType.Float, d, s[0] * s[1] * 3 / 4);
                emit("copy", size, "3B/px", () -> copyDst.copy_(copySrc), s[0] * s[1] * 3 * 2);
                // fp32 logits (f32-u8): the evaluate row only, for the bandwidth goal at 5 bytes per pixel
                for (String form : new String[] {"bf16-u8", "bf16-bits", "f32-u8"}) {
                    boolean bits = form.equals("bf16-bits");
                    MaskTargets t = bits ? MaskTargets.of(BitMasks.pack(y, "targets")) : MaskTargets.of(y);
                    Tensor z = form.equals("f32-u8") ? logits.to(ScalarType.Float) : logits;
                    long bytes = s[0] * s[1] * (form.equals("f32-u8") ? 4 : 2) + (bits ? s[0] * s[1] / 8 : s[0] * s[1]);
                    MaskMetrics.Result ev = MaskMetrics.evaluate(z, t, MaskMetrics.Spec.DEFAULT);
                    emit("evaluate", size, form, () -> MaskMetrics.evaluate(z, t, MaskMetrics.Spec.DEFAULT, ev), bytes);
                    if (form.equals("f32-u8")) {
                        continue;
                    }
                    // A/B: without programmatic dependent launch (NativeLibrary.rl_set_pdl)
                    NativeLibrary.rl_set_pdl(0);
                    try {
                        emit("evaluate/pdl=0", size, form,
                                () -> MaskMetrics.evaluate(logits, t, MaskMetrics.Spec.DEFAULT, ev), bytes);
                    } finally {
                        NativeLibrary.rl_set_pdl(-1);
                    }
                    // A/B on the same card: the same call with 1, 2, 4 waves of blocks (default: automatic, see mask_pass.cuh)
                    for (int waves : new int[] {1, 2, 4}) {
                        MaskStatsKernels.mask_set_waves(waves);
                        try {
                            emit("evaluate/waves=" + waves, size, form,
                                    () -> MaskMetrics.evaluate(logits, t, MaskMetrics.Spec.DEFAULT, ev), bytes);
                        } finally {
                            MaskStatsKernels.mask_set_waves(0);
                        }
                    }
                    MaskPolicy.Sample so = MaskPolicy.sample(logits, 1.0, 1, 0, true, t, MaskMetrics.Spec.DEFAULT);
                    emit("sampleAndScore", size, form,
                            () -> MaskPolicy.sample(logits, 1.0, 1, 0, true, t, MaskMetrics.Spec.DEFAULT, so),
                            bytes + s[0] * s[1] / 8);
                }
            }
        }
        for (String size : new String[] {"4x262144", "8x1048576", "32x1048576"}) {
            if (onlySize != null && !size.equals(onlySize)) {
                continue;
            }
            long[] s = BenchSupport.shape(size);
            for (ScalarType st : new ScalarType[] {ScalarType.BFloat16, ScalarType.Float}) {
                try (PointerScope scope = new PointerScope()) {
                    Tensor logits = Torch.randn(ScalarType.Float, d, s).to(st);
                    Tensor y = Torch.rand(ScalarType.Float, d, s).gt(Torch.scalar(0.8)).to(ScalarType.Byte);
                    long bytes = s[0] * s[1] * (BenchSupport.elementSize(st) + 1L);
                    emit("confusion", size, st == ScalarType.Float ? "f32" : "bf16",
                            () -> MaskMetrics.confusion(logits, y), bytes);
                }
            }
        }
        for (String size : new String[] {"128x8", "2048x16", "32x4096", "1024x512", "1024x1024", "2048x32768"}) {
            if (onlySize != null && !size.equals(onlySize)) {
                continue;
            }
            long[] s = BenchSupport.shape(size);
            try (PointerScope scope = new PointerScope()) {
                Tensor r = Torch.randn(ScalarType.Float, d, s), v = Torch.randn(ScalarType.Float, d, s);
                Tensor done = Torch.rand(ScalarType.Float, d, s).lt(Torch.scalar(0.01)).to(ScalarType.Byte);
                Gae.Rollout ro = Gae.Rollout.of(r, v, done, Torch.randn(ScalarType.Float, d, s[1]));
                for (Gae.Schedule sch : Gae.Schedule.values()) {
                    Gae.Options o = Gae.Options.CLEANRL.withSchedule(sch);
                    Gae.Result g = Gae.compute(ro, o);
                    emit("gae", size, sch.name().toLowerCase(Locale.ROOT) + "/" + Gae.cudaChunks(s[0], s[1], sch),
                            () -> Gae.compute(ro, o, g), s[0] * s[1] * 17);
                }
                // A/B: the default schedule without programmatic dependent launch (NativeLibrary.rl_set_pdl)
                Gae.Options oa = Gae.Options.CLEANRL;
                Gae.Result ga = Gae.compute(ro, oa);
                NativeLibrary.rl_set_pdl(0);
                try {
                    emit("gae/pdl=0", size, "auto", () -> Gae.compute(ro, oa, ga), s[0] * s[1] * 17);
                } finally {
                    NativeLibrary.rl_set_pdl(-1);
                }
                Gae.Options on = Gae.Options.CLEANRL.withNormalize(true, 1e-8);
                Gae.Result gn = Gae.compute(ro, on);
                emit("gae+norm", size, "auto", () -> Gae.compute(ro, on, gn), s[0] * s[1] * 17);
            }
        }
        for (String size : new String[] {"256x4096", "4096x4096", "8192x4096"}) {
            if (onlySize != null && !size.equals(onlySize)) {
                continue;
            }
            long[] s = BenchSupport.shape(size);
            for (String config : new String[] {"cleanrl", "grpo"}) {
                try (PointerScope scope = new PointerScope()) {
                    PpoBench.Inputs in = PpoBench.inputs(config, d, s);
                    PpoLoss.Batch b = in.batch();
                    PpoLoss.Config c = in.config();
                    PpoLoss.Result res = PpoLoss.compute(b, c);
                    emit("ppo", size, config, () -> PpoLoss.compute(b, c, res),
                            s[0] * s[1] * PpoBench.bytesPerToken(config));
                    if (config.equals("grpo")) {
                        // A/B on the same card: both GRPO schedules named (the row above is the default)
                        for (int sched : new int[] {RlKernels.PPO_GRPO_OLD, RlKernels.PPO_GRPO_STASH}) {
                            RlKernels.ppo_set_grpo_schedule(sched);
                            try {
                                emit("ppo", size, sched == RlKernels.PPO_GRPO_OLD ? "grpo/old" : "grpo/stash",
                                        () -> PpoLoss.compute(b, c, res), s[0] * s[1] * PpoBench.bytesPerToken(config));
                            } finally {
                                RlKernels.ppo_set_grpo_schedule(RlKernels.PPO_GRPO_DEFAULT);
                            }
                        }
                    }
                }
            }
        }
    }
}
