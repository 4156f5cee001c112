package dev.sa2va.bench;

import dev.sa2va.core.CudaStreams;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.kernels.LoraKernels;
import dev.sa2va.lora.LoraLinear;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.List;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.bytedeco.pytorch.global.torch_cuda;

/**
 * Device time per call of the LoRA layer and of the frozen layer on issue 3's grid, for the ratios against the
 * base GEMM and against the PyTorch baselines (benchmarks/python/lora_baselines.py measures the same way).
 *
 * <p>Method: a GPU sleep kernel gives the host a head start, then CUDA events bracket {@value #REPS} calls, so
 * (end - start) / {@value #REPS} is time on the GPU without host launch gaps; median of {@value #REPEATS} such
 * repetitions after warm-up. JMH ({@link LoraBench}) gives the host-inclusive time of the same calls.
 *
 * <pre>java dev.sa2va.bench.LoraDeviceTimes OUT.jsonl [--quick] [--shapes 896x896,4096x4096] [--ranks 16,128] [--tokens 4096]
 * java dev.sa2va.bench.LoraDeviceTimes --one D_IN D_OUT RANK TOKENS   (8 fwd+bwd calls, nothing else: for ncu)</pre>
 * One JSON object per line: {"impl","op","d_in","d_out","rank","tokens","dropout","pdl","us"}. Ops: fwd, bwd, fwdbwd
 * (the layer), kfwd, kbwd (our kernels alone, no GEMM), and for impl torch fwd, dx (plain GEMMs) and fwd_acc, dx_acc
 * (the same GEMMs with beta = 1 onto a written output, as the layer runs them). Impl ours_fused (dropout 0.05 and 0)
 * and ours_fused_dx_cublas (dropout 0.05, bwd), T = 4096, r = 16 and 128: the layer with our dropout-fused kernels for
 * the products the dropout touches (LoraKernels.lora_set_fused 1 resp. 2, and 3) instead of the default cuBLAS path,
 * an A/B on the same card.
 */
public final class LoraDeviceTimes {
    static final int REPS = 20, REPEATS = 3;
    static final String[] SHAPES = {"896x896", "896x4864", "4864x896", "2048x2048", "2048x11008", "4096x4096", "4096x14336"};
    static final int[] RANKS = {8, 16, 64, 128};
    static final int[] TOKENS = {4096, 2600};

    private final Device device;
    private final PrintWriter out;
    private final Pointer rawStream;
    private final BenchSupport.DeviceTimer timer = new BenchSupport.DeviceTimer(REPS, REPEATS);

    private LoraDeviceTimes(Device device, PrintWriter out) {
        this.device = device;
        this.out = out;
        this.rawStream = CudaStreams.prepareLaunch(device, "gpu_sleep_cuda");
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 1) {
            System.err.println("usage: LoraDeviceTimes OUT.jsonl [--quick] [--shapes A,B] [--ranks R,..] [--tokens T,..]"
                    + " | --one D_IN D_OUT RANK TOKENS");
            System.exit(2);
        }
        if (args[0].equals("--one")) {
            one(BenchSupport.cudaOrFail(), Long.parseLong(args[1]), Long.parseLong(args[2]), Integer.parseInt(args[3]),
                    Integer.parseInt(args[4]));
            return;
        }
        List<String> a = Arrays.asList(args);
        boolean quick = a.contains("--quick");
        String[] shapes = quick ? new String[] {"896x896", "4096x4096"} : SHAPES;
        int[] ranks = quick ? new int[] {16} : RANKS;
        int[] tokens = quick ? new int[] {4096} : TOKENS;
        int i = a.indexOf("--shapes");
        if (i >= 0) {
            shapes = args[i + 1].split(",");
        }
        i = a.indexOf("--ranks");
        if (i >= 0) {
            ranks = Arrays.stream(args[i + 1].split(",")).mapToInt(Integer::parseInt).toArray();
        }
        i = a.indexOf("--tokens");
        if (i >= 0) {
            tokens = Arrays.stream(args[i + 1].split(",")).mapToInt(Integer::parseInt).toArray();
        }
        Device d = BenchSupport.cudaOrFail();
        Path file = Path.of(args[0]);
        try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(file, StandardCharsets.UTF_8))) {
            new LoraDeviceTimes(d, w).run(shapes, ranks, tokens);
        }
        System.out.println("wrote " + file);
    }

    /** A few training steps of one configuration and nothing else, so a profiler sees only these kernels. */
    static void one(Device d, long dIn, long dOut, int rank, int tokens) {
        try (PointerScope scope = new PointerScope()) {
            Torch.seed(0);
            Tensor w = LoraBench.LoraShapes.weight(dOut, dIn, d);
            Tensor x = Torch.randn(ScalarType.Float, d, tokens, dIn).to(ScalarType.BFloat16);
            Tensor dy = Torch.randn(ScalarType.Float, d, tokens, dOut).to(ScalarType.BFloat16);
            LoraLinear l = LoraBench.LoraShapes.layer(w, rank, 0.05, d);
            // 8 steps of ~10 launches each (our fused kernels, cuBLAS low-rank and base GEMMs): enough for ncu's
            // --launch-skip 50 --launch-count 24 in benchmarks/lora-gpu.sh to see whole steps after warm-up
            for (int i = 0; i < 8; i++) {
                try (PointerScope s = new PointerScope()) {
                    LoraLinear.Saved sv = l.forwardTrain(x);
                    l.backward(sv, dy).close();
                    torch.linear(x, w).close();
                    dy.mm(w).close();
                }
            }
            torch_cuda.device_synchronize();
            l.close();
        }
    }

    interface Call {
        void run();
    }

    /** Median device microseconds per call ({@link BenchSupport.DeviceTimer}: sleep head start, events). */
    double deviceMicros(Call call) {
        return timer.micros(call::run)[0];
    }

    /**
     * Our kernels without the cuBLAS GEMMs (ops "kfwd", "kbwd"): lora_forward_cuda and lora_backward_cuda on bf16
     * tensors, to set against their traffic floor (lora_report.py).
     */
    void kernelsAlone(String impl, Tensor x, Tensor dy, long dIn, long dOut, int rank, int tokens, double p) {
        try (PointerScope scope = new PointerScope()) {
            Tensor a = Torch.randn(ScalarType.Float, device, rank, dIn).mul(Torch.scalar(1 / Math.sqrt(dIn)))
                    .to(ScalarType.BFloat16);
            Tensor b = Torch.randn(ScalarType.Float, device, dOut, rank).mul(Torch.scalar(0.01)).to(ScalarType.BFloat16);
            Tensor xs = Torch.empty(ScalarType.BFloat16, device, tokens, rank);
            Tensor y = Torch.empty(ScalarType.BFloat16, device, tokens, dOut);
            Tensor dx = Torch.empty(ScalarType.BFloat16, device, tokens, dIn);
            Tensor gA = Torch.zeros(ScalarType.Float, device, rank, dIn);
            Tensor gB = Torch.zeros(ScalarType.Float, device, dOut, rank);
            int bf16 = TensorCheck.nativeDType(ScalarType.BFloat16);
            float s = 2.0f;
            emit(impl, "kfwd", dIn, dOut, rank, tokens, p, true, deviceMicros(() ->
                    LoraKernels.lora_forward_cuda(x.data_ptr(), bf16, tokens, dIn, dOut, rank, a.data_ptr(), b.data_ptr(),
                            null, s, null, 0, null, (float) p, 1, 0, xs.data_ptr(), y.data_ptr(), rawStream)));
            emit(impl, "kbwd", dIn, dOut, rank, tokens, p, true, deviceMicros(() ->
                    LoraKernels.lora_backward_cuda(x.data_ptr(), dy.data_ptr(), xs.data_ptr(), bf16, tokens, dIn, dOut,
                            rank, a.data_ptr(), b.data_ptr(), s, (float) p, 1, 0, gA.data_ptr(), gB.data_ptr(),
                            dx.data_ptr(), rawStream)));
        }
    }

    void emit(String impl, String op, long dIn, long dOut, int rank, int tokens, double p, boolean pdl, double us) {
        out.printf(Locale.ROOT, "{\"impl\": \"%s\", \"op\": \"%s\", \"d_in\": %d, \"d_out\": %d, \"rank\": %d, "
                + "\"tokens\": %d, \"dropout\": %.3f, \"pdl\": %b, \"us\": %.3f}%n", impl, op, dIn, dOut, rank, tokens, p,
                pdl, us);
        out.flush();
        System.out.printf(Locale.ROOT, "%-6s %-8s %5dx%-5d r=%-3d T=%-4d p=%.2f pdl=%-5b %9.1f us%n", impl, op, dIn, dOut,
                rank, tokens, p, pdl, us);
    }

    void run(String[] shapes, int[] ranks, int[] tokensList) {
        for (String shape : shapes) {
            long[] s = BenchSupport.shape(shape);
            long dIn = s[0], dOut = s[1];
            for (int tokens : tokensList) {
                try (PointerScope scope = new PointerScope()) {
                    Torch.seed(0);
                    Tensor w = LoraBench.LoraShapes.weight(dOut, dIn, device);
                    Tensor x = Torch.randn(ScalarType.Float, device, tokens, dIn).to(ScalarType.BFloat16);
                    Tensor dy = Torch.randn(ScalarType.Float, device, tokens, dOut).to(ScalarType.BFloat16);
                    emit("torch", "fwd", dIn, dOut, 0, tokens, 0, false,
                            deviceMicros(() -> torch.linear(x, w).close()));
                    emit("torch", "dx", dIn, dOut, 0, tokens, 0, false, deviceMicros(() -> dy.mm(w).close()));
                    // the same GEMMs accumulating onto an output that is already written (beta = 1), as LoraOps runs
                    // them: what the design costs inside cuBLAS beyond our kernels
                    Tensor yAcc = torch.linear(x, w), dxAcc = dy.mm(w), wT = w.t();
                    emit("torch", "fwd_acc", dIn, dOut, 0, tokens, 0, false, deviceMicros(() -> yAcc.addmm_(x, wT)));
                    emit("torch", "dx_acc", dIn, dOut, 0, tokens, 0, false, deviceMicros(() -> dxAcc.addmm_(dy, w)));
                    for (int rank : ranks) {
                        for (double p : new double[] {0.05, 0.0}) {
                            LoraLinear l = LoraBench.LoraShapes.layer(w, rank, p, device);
                            emit("ours", "fwd", dIn, dOut, rank, tokens, p, true, deviceMicros(() -> {
                                LoraLinear.Saved sv = l.forwardTrain(x);
                                sv.output().close();
                                sv.close();
                            }));
                            LoraLinear.Saved kept = l.forwardTrain(x);
                            if (p == 0.05) {
                                kernelsAlone("ours", x, dy, dIn, dOut, rank, tokens, p);
                            }
                            emit("ours", "bwd", dIn, dOut, rank, tokens, p, true, deviceMicros(() -> l.backward(kept, dy).close()));
                            emit("ours", "fwdbwd", dIn, dOut, rank, tokens, p, true, deviceMicros(() -> {
                                LoraLinear.Saved sv = l.forwardTrain(x);
                                l.backward(sv, dy).close();
                                sv.output().close();
                                sv.close();
                            }));
                            if (tokens == 4096 && (rank == 16 || rank == 128)) {
                                // A/B on the same card against the default (cuBLAS, keep⊙x through the workspace):
                                // our kernels with the dropout fused into the products that read x (impl ours_fused;
                                // lora_set_fused 1 with dropout, 2 at p = 0)
                                String impl = "ours_fused";
                                LoraKernels.lora_set_fused(p > 0 ? 1 : 2);
                                try {
                                    emit(impl, "fwd", dIn, dOut, rank, tokens, p, true, deviceMicros(() -> {
                                        LoraLinear.Saved sv = l.forwardTrain(x);
                                        sv.output().close();
                                        sv.close();
                                    }));
                                    emit(impl, "fwdbwd", dIn, dOut, rank, tokens, p, true, deviceMicros(() -> {
                                        LoraLinear.Saved sv = l.forwardTrain(x);
                                        l.backward(sv, dy).close();
                                        sv.output().close();
                                        sv.close();
                                    }));
                                    if (p > 0) {
                                        kernelsAlone(impl, x, dy, dIn, dOut, rank, tokens, p);
                                        // fused, but dx's masked term on cuBLAS + the in-place mask (lora_set_fused 3)
                                        LoraKernels.lora_set_fused(3);
                                        emit("ours_fused_dx_cublas", "bwd", dIn, dOut, rank, tokens, p, true,
                                                deviceMicros(() -> l.backward(kept, dy).close()));
                                    }
                                } finally {
                                    LoraKernels.lora_set_fused(-1);
                                }
                            }
                            kept.close();
                            l.close();
                        }
                    }
                }
            }
        }
    }
}
