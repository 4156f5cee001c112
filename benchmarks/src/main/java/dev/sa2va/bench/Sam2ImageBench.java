package dev.sa2va.bench;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.sam2.Sam2Config;
import dev.sa2va.sam2.Sam2Model;
import dev.sa2va.sam2.Sam2Prompt;
import dev.sa2va.sam2.Sam2Weights;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.cuda.DeviceStats;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.bytedeco.pytorch.global.torch_cuda;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * SAM2 image path on CUDA, Sa2VA's way: image encoder + language-prompt decoder + argmax-IoU selection for a batch
 * of {@code batch} images of {@code imageSize}² (pixels already on the GPU, normalised), one synchronisation per
 * call. Time per operation = latency of one batch; throughput = batch / time. The caching allocator's peak
 * allocated and reserved bytes over the measured trial (weights and inputs included, as
 * torch.cuda.max_memory_allocated in the HF baseline core/verification/sam2/hf_speed.py) are printed and, with
 * {@code SA2VA_BENCH_MEM_OUT=file}, appended to that file as one JSON line per trial.
 *
 * <p>Weights: {@code -p weights=FILE} (Sa2VA key names, e.g. the SAM2-L weights generated on the GPU host), or
 * random ones when empty (speed does not depend on the values).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2) // one 1-2 s warm-up left batch 1 under-JITted on the H200 (27 vs 17 ms)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx8g"})
public class Sam2ImageBench {
    @Param({"1", "4", "8"})
    public int batch;

    @Param({"bf16"})
    public String dtype;

    @Param({"hiera-large"})
    public String config;

    @Param({""})
    public String weights;

    /** cuda, or cpu for a smoke run of this benchmark (e.g. -p device=cpu -p config=tiny-random -p dtype=f32). */
    @Param({"cuda"})
    public String device;

    // one model for all trials of a run with -f 0 (loading SAM2-L takes seconds)
    private static Sam2Model cached;
    private static String cachedKey;

    Sam2Model model;
    Tensor pixels;
    Sam2Prompt prompt;
    double hostMs;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        boolean cuda = device.equals("cuda");
        Device d = cuda ? BenchSupport.cudaOrFail() : Devices.cpu();
        ScalarType st = BenchSupport.dtype(dtype);
        String key = config + "|" + dtype + "|" + weights + "|" + device;
        if (!key.equals(cachedKey)) {
            if (cached != null) {
                cached.close();
            }
            Sam2Config c = Sam2Config.preset(config);
            cached = weights.isEmpty() ? new Sam2Model(Sam2Weights.random(c, 1, st, d))
                    : Sam2Model.load(Path.of(weights), c, Sam2Weights.SA2VA_PREFIX, st, d);
            cachedKey = key;
        }
        model = cached;
        int s = model.config().imageSize();
        Torch.seed(7);
        pixels = Torch.randn(ScalarType.Float, d, batch, 3, s, s).to(st);
        prompt = Sam2Prompt.language(Torch.randn(ScalarType.Float, d, batch, model.config().hidden()));
        for (int i = 0; i < 2; i++) { // cuDNN / cuBLAS plan selection before the peak is reset
            encodeDecode();
        }
        if (cuda) {
            try {
                torch_cuda.getAllocator().resetPeakStats((byte) 0);
            } catch (RuntimeException | LinkageError e) { // timings stay valid without memory statistics
                System.out.println("SAM2BENCH cannot reset the allocator's peak statistics: " + e);
            }
        }
    }

    /** Median host time of {@code n} calls of encode + decode, each followed by a synchronisation (not timed). */
    static double hostEnqueueMs(Sam2Model model, Tensor pixels, Sam2Prompt prompt, int n, Runnable sync) {
        double[] ms = new double[n];
        for (int i = 0; i < n; i++) {
            try (PointerScope scope = new PointerScope()) {
                long t0 = System.nanoTime();
                model.segment(pixels, prompt);
                ms[i] = (System.nanoTime() - t0) / 1e6;
            }
            sync.run();
        }
        return Sam2HostCost.median(ms);
    }

    private void sync() {
        if (device.equals("cuda")) {
            BenchSupport.sync();
        }
    }

    @Benchmark
    public void encodeDecode() {
        try (PointerScope scope = new PointerScope()) {
            model.segment(pixels, prompt);
            sync();
        }
    }

    @TearDown(Level.Trial)
    public void report() throws IOException {
        sync();
        long peakAllocated = -1, peakReserved = -1;
        if (device.equals("cuda")) {
            try {
                DeviceStats stats = torch_cuda.getAllocator().getDeviceStats((byte) 0);
                peakAllocated = stats.allocated_bytes().peak();
                peakReserved = stats.reserved_bytes().peak();
            } catch (RuntimeException | LinkageError e) {
                System.out.println("SAM2BENCH cannot read the allocator's statistics: " + e);
            }
        }
        // host time to enqueue one batch (no sync inside), measured warm (after the JMH iterations) and after the
        // peak statistics were read: a median close to the measured time per batch means the call is host-bound
        hostMs = hostEnqueueMs(model, pixels, prompt, 9, this::sync);
        String line = String.format(Locale.ROOT, "{\"impl\": \"java\", \"config\": \"%s\", \"dtype\": \"%s\", "
                + "\"batch\": %d, \"peak_allocated_bytes\": %d, \"peak_reserved_bytes\": %d, \"host_enqueue_ms\": %.3f, "
                + "\"weights\": \"%s\", \"device\": \"%s\", \"javacpp_max_physical_bytes\": %d}", config, dtype, batch,
                peakAllocated, peakReserved, hostMs, weights.isEmpty() ? "random" : weights, device,
                Pointer.maxPhysicalBytes());
        System.out.println("SAM2BENCH " + line);
        String out = System.getenv("SA2VA_BENCH_MEM_OUT");
        if (out != null && !out.isEmpty()) {
            Files.writeString(Path.of(out), line + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        }
        pixels.close();
    }
}
