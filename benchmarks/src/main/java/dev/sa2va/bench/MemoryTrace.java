package dev.sa2va.bench;

import dev.sa2va.core.StageMarks;
import dev.sa2va.core.Torch;
import dev.sa2va.mllm.KvCache;
import dev.sa2va.mllm.MllmWeights;
import dev.sa2va.mllm.Probe;
import dev.sa2va.mllm.Qwen2Model;
import dev.sa2va.mllm.Sa2vaConfig;
import dev.sa2va.mllm.Sa2vaMllm;
import dev.sa2va.sam2.Sam2Config;
import dev.sa2va.sam2.Sam2Model;
import dev.sa2va.sam2.Sam2Prompt;
import dev.sa2va.sam2.Sam2Weights;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.cuda.DeviceStats;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Where the GPU memory of one forward pass goes, stage by stage: the caching allocator's allocated bytes after each
 * stage ("cur") and the peak within the stage ("peak", the allocator's peak statistic reset at every stage
 * boundary). Its counterpart for HF transformers is benchmarks/python/memory_trace.py (forward hooks on the same
 * modules, same stage names); benchmarks/memory_trace.sh runs both in one call and prints them side by side.
 *
 * <pre>
 *   MemoryTrace [sam2 [BATCH]] [mllm]       (default: sam2 1 mllm)
 * </pre>
 * SAM2-L bf16, random weights, {@code BATCH} random 1024² images and a language prompt: encode + decode + select
 * ({@link Sam2Model#segment}), stages from {@link StageMarks}. Sa2VA-1B dims bf16, random weights, 10 tiles, the
 * 2583-token prompt of {@link MllmBench}: vision (per ViT layer, pixel shuffle, projector), merge, prefill (per
 * decoder layer), last-row logits, then 4 greedy decode steps. One untimed warm-up of each first (cuBLAS/cuDNN
 * workspaces and plans), as the benchmarks do. Lines go to stdout as {@code MEMTRACE {json}} and, with
 * {@code MEMTRACE_OUT=file}, to that file (JSON lines).
 */
public final class MemoryTrace {
    private static final double MIB = 1 << 20;
    private final PrintWriter out;
    private final String model;
    private final int batch;
    private long maxPeak;

    private MemoryTrace(PrintWriter out, String model, int batch) {
        this.out = out;
        this.model = model;
        this.batch = batch;
    }

    public static void main(String[] args) throws IOException {
        String file = System.getenv("MEMTRACE_OUT");
        PrintWriter w = file == null || file.isEmpty() ? null : new PrintWriter(Files.newBufferedWriter(Path.of(file),
                StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND), true);
        Device d = BenchSupport.cudaOrFail();
        boolean any = false;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("sam2")) {
                int b = i + 1 < args.length && args[i + 1].matches("\\d+") ? Integer.parseInt(args[++i]) : 1;
                sam2(w, d, b);
                any = true;
            } else if (args[i].equals("mllm")) {
                mllm(w, d);
                any = true;
            } else {
                throw new IllegalArgumentException("argument " + args[i] + ": expected sam2 [BATCH] or mllm");
            }
        }
        if (!any) {
            sam2(w, d, 1);
            mllm(w, d);
        }
        if (w != null) {
            w.close();
        }
    }

    static void sam2(PrintWriter w, Device d, int batch) {
        Sam2Config c = Sam2Config.preset("hiera-large");
        try (Sam2Model sam = new Sam2Model(Sam2Weights.random(c, 1, ScalarType.BFloat16, d));
             PointerScope outer = new PointerScope()) {
            int s = c.imageSize();
            Torch.seed(7);
            Tensor pixels = Torch.randn(ScalarType.Float, d, batch, 3, s, s).to(ScalarType.BFloat16);
            Sam2Prompt prompt = Sam2Prompt.language(Torch.randn(ScalarType.Float, d, batch, c.hidden()));
            for (int i = 0; i < 2; i++) {
                try (PointerScope sc = new PointerScope()) {
                    sam.segment(pixels, prompt);
                }
            }
            BenchSupport.sync();
            MemoryTrace t = new MemoryTrace(w, "sam2", batch);
            t.start();
            try (PointerScope sc = new PointerScope()) {
                sam.segment(pixels, prompt);
                t.mark("sam2.return");
            }
            t.mark("end");
            t.finish();
        }
    }

    static void mllm(PrintWriter w, Device d) {
        Sa2vaConfig cfg = MllmBench.sa2va1b();
        try (Sa2vaMllm m = MllmWeights.random(cfg, MllmBench.VOCAB, 20240611, ScalarType.BFloat16, d);
             PointerScope outer = new PointerScope()) {
            int s = cfg.vision().imageSize();
            Torch.seed(1);
            Tensor pixels = Torch.randn(ScalarType.Float, d, 10, 3, s, s).to(ScalarType.BFloat16);
            Tensor ids = MllmBench.prompt(10 * cfg.tokensPerTile()).to(d, ScalarType.Long);
            runMllm(m, pixels, ids, null);
            BenchSupport.sync();
            MemoryTrace t = new MemoryTrace(w, "mllm", 1);
            t.start();
            runMllm(m, pixels, ids, t);
            t.mark("end");
            t.finish();
        }
    }

    /** Vision + merge + prefill + last-row logits + 4 greedy steps, as MllmBench; marks when {@code t} is given. */
    private static void runMllm(Sa2vaMllm m, Tensor pixels, Tensor ids, MemoryTrace t) {
        Probe probe = t == null ? Probe.NONE : (name, value) -> t.mark("mllm." + name);
        long len = ids.size(0);
        Qwen2Model llm = m.llm();
        try (KvCache c = llm.newCache(1, len + 8); PointerScope s = new PointerScope()) {
            Tensor features = m.imageFeatures(pixels, probe);
            Tensor embeds = m.inputsEmbeds(ids, features, MllmBench.CTX);
            if (t != null) {
                t.mark("mllm.merge");
            }
            Tensor h = llm.forward(embeds, c, probe);
            Tensor tok = MllmBench.argmax(llm.logits(h.narrow(1, len - 1, 1)));
            if (t != null) {
                t.mark("mllm.logits");
            }
            for (int i = 0; i < 4; i++) {
                try (PointerScope step = new PointerScope()) {
                    Tensor next = MllmBench.argmax(llm.logits(llm.forward(llm.embed(tok), c, Probe.NONE)))
                            .retainReference();
                    tok = next;
                }
                if (t != null) {
                    t.mark("mllm.decode." + i);
                }
            }
        }
    }

    private void start() {
        torch.resetPeakStats((byte) 0);
        maxPeak = 0;
        emit("start", current(), current());
        StageMarks.set(this::mark);
    }

    private void mark(String stage) {
        long cur = current(), peak = peak();
        torch.resetPeakStats((byte) 0);
        maxPeak = Math.max(maxPeak, peak);
        emit(stage, cur, peak);
    }

    private void finish() {
        StageMarks.set(null);
        emit("max_peak", current(), maxPeak);
    }

    private void emit(String stage, long cur, long peak) {
        String line = String.format(Locale.ROOT, "{\"impl\": \"java\", \"model\": \"%s\", \"batch\": %d, \"stage\": \"%s\", "
                + "\"cur_mib\": %.2f, \"peak_mib\": %.2f}", model, batch, stage, cur / MIB, peak / MIB);
        System.out.println("MEMTRACE " + line);
        if (out != null) {
            out.println(line);
        }
    }

    private static long current() {
        DeviceStats st = torch.getDeviceStats((byte) 0);
        long v = st.allocated_bytes().current();
        st.close();
        return v;
    }

    private static long peak() {
        DeviceStats st = torch.getDeviceStats((byte) 0);
        long v = st.allocated_bytes().peak();
        st.close();
        return v;
    }
}
