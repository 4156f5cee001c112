package dev.sa2va.bench;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.mllm.KvCache;
import dev.sa2va.mllm.MllmWeights;
import dev.sa2va.mllm.Probe;
import dev.sa2va.mllm.Qwen2Model;
import dev.sa2va.mllm.Sa2vaConfig;
import dev.sa2va.mllm.Sa2vaMllm;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.cuda.DeviceStats;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The Sa2VA MLLM at Sa2VA-1B dimensions (InternViT-300M + Qwen2.5-0.5B, vocab 151679, tied head) in bf16 on CUDA,
 * one 1024×1024 image = 10 tiles = 2560 image tokens in a 2583-token prompt laid out as
 * core/verification/mllm/mllm_reference.py's HF benchmark builds it. Random weights (speed does not depend on
 * the values).
 *
 * <ul>
 *   <li>{@code visionPrefill}: ViT + projector + merge + prefill into a fresh KV cache + last-row logits + argmax.
 *   <li>{@code decode}: one greedy step (embed, 24 layers with the cache, full-vocabulary logits, argmax); the token
 *       stays on the device, as in HF's loop; score = time per token.
 * </ul>
 * Before the JMH iterations, the state also replays HF's own protocol once (1 warm-up, then 3 × [vision+prefill,
 * 64 decode steps], medians) with the allocator's peak reset after the warm-up, and writes those numbers and the
 * peak allocated memory as JSON to {@code $SA2VA_MLLM_BENCH_JSON} (if set): same method, same card, comparable
 * with {@code hf_bench.json}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx8g"})
public class MllmBench {
    static final int DECODE_STEPS = 64;
    static final long VOCAB = 151679;
    // ids of the InternVL2.5 / Qwen2.5 tokenizer, as in the HF benchmark (only their positions matter for speed)
    static final long IM_START = 151644, IM_END = 151645, IMG = 151665, IMG_END = 151666, CTX = 151667, NL = 198;

    /** Sa2VA-1B: InternViT-300M-448px-V2_5 + Qwen2.5-0.5B-Instruct (sa2va-reference.md §1.1, §1.3). */
    static Sa2vaConfig sa2va1b() {
        return new Sa2vaConfig(new Sa2vaConfig.Vision(1024, 24, 16, 4096, 448, 14, 1e-6, true),
                new Sa2vaConfig.Llm(896, 24, 14, 2, 4864, 1e-6, 1e6, true, (int) VOCAB, 32768), "qwen_chat", 0.5, "v2", -1);
    }

    /** A small config with the same structure, to smoke-test the benchmark on a CPU ({@code -p config=small}). */
    static Sa2vaConfig small() {
        return new Sa2vaConfig(new Sa2vaConfig.Vision(64, 2, 4, 128, 56, 14, 1e-6, true),
                new Sa2vaConfig.Llm(64, 2, 4, 2, 128, 1e-6, 1e6, true, (int) VOCAB, 32768), "qwen_chat", 0.5, "v2", -1);
    }

    /** Sa2VA-1B on CUDA (the measurement) or the small config on the CPU (a smoke test of the code). */
    @Param({"sa2va-1b"})
    public String config;

    /** Built once per JVM and config (with {@code -f 0} all benchmarks share it). */
    static final class Model {
        final Sa2vaMllm mllm;
        final Tensor pixels;
        final Tensor ids;
        final long promptLen;
        final KvCache cache;
        Tensor firstToken;

        Model(String config) {
            boolean large = config.equals("sa2va-1b");
            if (!large && !config.equals("small")) {
                throw new IllegalArgumentException("config " + config + " (sa2va-1b or small)");
            }
            org.bytedeco.pytorch.Device d = large ? BenchSupport.cudaOrFail() : Devices.cpu();
            Sa2vaConfig cfg = large ? sa2va1b() : small();
            int s = cfg.vision().imageSize();
            Torch.seed(1);
            mllm = MllmWeights.random(cfg, VOCAB, 20240611, ScalarType.BFloat16, d);
            try (PointerScope scope = new PointerScope()) {  // frees the float32 draw and the host ids now, not at a GC
                pixels = Torch.randn(ScalarType.Float, d, 10, 3, s, s).to(ScalarType.BFloat16).retainReference();
                ids = prompt(10 * cfg.tokensPerTile()).to(d, ScalarType.Long).retainReference();
            }
            promptLen = ids.size(0);
            cache = mllm.llm().newCache(1, promptLen + DECODE_STEPS);
        }

        /** Vision + merge + prefill into {@code cache} (from empty) and the first greedy token, on the device. */
        Tensor prefill(KvCache c) {
            c.clear();
            Tensor features = mllm.imageFeatures(pixels, Probe.NONE);
            Tensor embeds = mllm.inputsEmbeds(ids, features, CTX);
            Tensor h = mllm.llm().forward(embeds, c, Probe.NONE);
            return argmax(mllm.llm().logits(h.narrow(1, promptLen - 1, 1)));
        }

        /** {@code steps} greedy steps after {@code tok}; the last token (the caller closes it). */
        Tensor decode(KvCache c, Tensor tok, int steps) {
            Qwen2Model llm = mllm.llm();
            Tensor t = tok;
            for (int i = 0; i < steps; i++) {
                try (PointerScope s = new PointerScope()) {
                    Tensor next = argmax(llm.logits(llm.forward(llm.embed(t), c, Probe.NONE))).retainReference();
                    if (t != tok) {
                        t.close();
                    }
                    t = next;
                }
            }
            return t;
        }
    }

    static Tensor argmax(Tensor logits) {
        return logits.argmax(new LongOptional(-1), false);    // [1, 1]
    }

    /** The HF benchmark's prompt: im_start w \n <img> ctx… </img> \n w×12 im_end \n im_start w \n. */
    static Tensor prompt(int imageTokens) {
        long[] head = {IM_START, 872, NL, IMG};
        long[] tail = new long[2 + 12 + 5];
        tail[0] = IMG_END;
        tail[1] = NL;
        for (int i = 0; i < 12; i++) {
            tail[2 + i] = 1000 + 37L * i;
        }
        tail[14] = IM_END;
        tail[15] = NL;
        tail[16] = IM_START;
        tail[17] = 77091;
        tail[18] = NL;
        long[] ids = new long[head.length + imageTokens + tail.length];
        System.arraycopy(head, 0, ids, 0, head.length);
        Arrays.fill(ids, head.length, head.length + imageTokens, CTX);
        System.arraycopy(tail, 0, ids, head.length + imageTokens, tail.length);
        return Torch.fromLongs(ids, ids.length);
    }

    private static final java.util.Map<String, Model> SHARED = new java.util.HashMap<>();

    static synchronized Model model(String config) {
        Model m = SHARED.get(config);
        if (m == null) {
            m = new Model(config);
            try {
                hfProtocol(m);
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
            SHARED.put(config, m);
        }
        return m;
    }

    /** HF's measurement (mllm_reference.py bench()): warm-up, reset peak, 3 runs, medians and peak allocated. */
    static void hfProtocol(Model m) throws IOException {
        byte dev = 0;
        boolean cuda = m.pixels.is_cuda();
        double[] vision = new double[3], prefill = new double[3], decode = new double[3];
        for (int run = -1; run < 3; run++) {
            if (run == 0 && cuda) {
                torch.emptyCache();
                torch.resetPeakStats(dev);
            }
            try (KvCache c = m.mllm.llm().newCache(1, m.promptLen + DECODE_STEPS);
                 PointerScope s = new PointerScope()) {
                sync(cuda);
                long t0 = System.nanoTime();
                Tensor features = m.mllm.imageFeatures(m.pixels, Probe.NONE);
                sync(cuda);
                long tv = System.nanoTime();
                Tensor embeds = m.mllm.inputsEmbeds(m.ids, features, CTX);
                Tensor h = m.mllm.llm().forward(embeds, c, Probe.NONE);
                Tensor tok = argmax(m.mllm.llm().logits(h.narrow(1, m.promptLen - 1, 1)));
                sync(cuda);
                long t1 = System.nanoTime();
                Tensor last = m.decode(c, tok, DECODE_STEPS);
                sync(cuda);
                last.close();
                long t2 = System.nanoTime();
                if (run >= 0) {
                    vision[run] = (tv - t0) / 1e6;
                    prefill[run] = (t1 - t0) / 1e6;
                    decode[run] = (t2 - t1) / 1e9;
                }
            }
        }
        long peak = cuda ? allocated(true) : -1;
        double hostPerToken = decodeHostMs(m, cuda);
        JsonObject o = new JsonObject();
        o.addProperty("impl", "sa2va-java (libtorch 2.10 via JavaCPP 1.5.13), bf16, SDPA");
        o.addProperty("prompt_tokens", m.promptLen);
        o.addProperty("tiles", m.pixels.size(0));
        o.addProperty("vision_ms_median", median(vision));
        o.addProperty("vision_plus_prefill_ms_median", median(prefill));
        o.addProperty("decode_steps", DECODE_STEPS);
        o.addProperty("decode_tokens_per_s_median", DECODE_STEPS / median(decode));
        o.addProperty("decode_host_ms_per_token", hostPerToken);
        o.addProperty("javacpp_max_physical_bytes", org.bytedeco.javacpp.Pointer.maxPhysicalBytes());
        o.addProperty("peak_allocated_gib", peak / Math.pow(2, 30));
        o.addProperty("weights_allocated_gib", cuda ? weightsBytes(m) / Math.pow(2, 30) : -1);
        String json = new GsonBuilder().setPrettyPrinting().create().toJson(o);
        System.out.println("MllmBench HF-protocol run: " + json);
        String out = System.getenv("SA2VA_MLLM_BENCH_JSON");
        if (out != null && !out.isBlank()) {
            Files.writeString(Path.of(out), json);
        }
    }

    /**
     * Host time per greedy step when {@link #DECODE_STEPS} steps are enqueued without a synchronisation (warm, after
     * the protocol's runs, outside its peak): close to the measured time per token means decoding is host-bound.
     */
    static double decodeHostMs(Model m, boolean cuda) {
        try (KvCache c = m.mllm.llm().newCache(1, m.promptLen + DECODE_STEPS);
             PointerScope s = new PointerScope()) {
            Tensor tok = m.prefill(c);
            sync(cuda);
            long t0 = System.nanoTime();
            Tensor last = m.decode(c, tok, DECODE_STEPS);
            long t1 = System.nanoTime();
            sync(cuda);
            last.close();
            return (t1 - t0) / 1e6 / DECODE_STEPS;
        }
    }

    /**
     * Allocated now, between runs, as HF's {@code weights_allocated_gib} (weights and inputs); without the KV cache
     * this class keeps for its JMH decode benchmark, which HF's script does not have.
     */
    static long weightsBytes(Model m) {
        long now = allocated(false);
        Sa2vaConfig.Llm c = m.mllm.config().llm();
        long jmhCache = 2L * c.numLayers() * c.numKvHeads() * c.headDim() * m.cache.capacity() * 2;
        return now - jmhCache;
    }

    /** The caching allocator's allocated bytes on cuda:0 (all pools): peak since the last reset, or current. */
    static long allocated(boolean peak) {
        DeviceStats st = torch.getDeviceStats((byte) 0);
        long v = peak ? st.allocated_bytes().peak() : st.allocated_bytes().current();
        st.close();  // also keeps st reachable until its Stat has been read
        return v;
    }

    static void sync(boolean cuda) {
        if (cuda) {
            BenchSupport.sync();
        }
    }

    static double median(double[] a) {
        double[] s = a.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }

    Model m;

    @Setup
    public void setup() {
        m = model(config);
        if (m.firstToken == null) {
            try (PointerScope s = new PointerScope()) {
                m.firstToken = m.prefill(m.cache).retainReference();
            }
        }
    }

    @Benchmark
    public void visionPrefill() {
        try (KvCache c = m.mllm.llm().newCache(1, m.promptLen + DECODE_STEPS); PointerScope s = new PointerScope()) {
            m.prefill(c);
            sync(m.pixels.is_cuda());
        }
    }

    @Benchmark
    @OperationsPerInvocation(DECODE_STEPS)
    public void decode() {
        m.cache.truncate(m.promptLen);
        try (PointerScope s = new PointerScope()) {
            Tensor last = m.decode(m.cache, m.firstToken, DECODE_STEPS);
            sync(m.pixels.is_cuda());
            last.close();
        }
    }
}
