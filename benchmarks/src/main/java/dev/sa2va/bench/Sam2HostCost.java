package dev.sa2va.bench;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.sam2.Sam2Config;
import dev.sa2va.sam2.Sam2Model;
import dev.sa2va.sam2.Sam2Prompt;
import dev.sa2va.sam2.Sam2Weights;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import javax.management.ObjectName;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Host cost of one SAM2 forward (encode + language-prompt decode), the part of a batch-1 call that is not GPU
 * work: Java, JNI, JavaCPP object bookkeeping and libtorch's dispatcher. On the CPU it runs the SAM2-L graph
 * ({@code --config large-structure}: hiera-large's 48 blocks, windows, global blocks and q-pool stages, with tiny
 * widths at a 256² image, so that the op sequence is SAM2-L's; the CPU arithmetic, mostly CPU SDPA, still takes most
 * of the time, so compare settings or builds on it, not absolute times with the GPU); on CUDA
 * ({@code --device cuda}) it times the enqueue of the real model without synchronising inside a call.
 *
 * <p>Reports, per forward after warm-up: median / min host time, JavaCPP's limits in effect and what one owning JavaCPP
 * object and one empty {@code PointerScope} cost on this host, a sampling profile of the forward thread, and with
 * {@code --count N} the objects a forward allocates (a class histogram of all heap objects diffed around N forwards;
 * run it with {@code -XX:+UnlockExperimentalVMOptions -XX:+UseEpsilonGC} so that nothing is collected in between and
 * the counts are exact allocations).
 *
 * <pre>
 * OMP_NUM_THREADS=1 java -cp benchmarks/target/benchmarks.jar dev.sa2va.bench.Sam2HostCost --iters 30
 * java -XX:+UnlockExperimentalVMOptions -XX:+UseEpsilonGC -Xmx6g -cp ... dev.sa2va.bench.Sam2HostCost --count 5
 * bash .gpu/host.sh java dev.sa2va.bench.Sam2HostCost --device cuda --config hiera-large --dtype bf16
 * </pre>
 */
public final class Sam2HostCost {
    private Sam2HostCost() {
    }

    /** SAM2-L's block structure with tiny widths: the same op sequence as hiera-large, little arithmetic. */
    static Sam2Config largeStructure(int imageSize) {
        Sam2Config l = Sam2Config.hieraLarge();
        return new Sam2Config(imageSize, new int[] {2, 4, 8, 16}, l.heads(), l.blocks(), l.windows(),
                l.globalBlocks(), l.posEmbedBackground(), 16, l.decoderHeads(), 16, 16);
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> a = parse(args);
        String device = a.getOrDefault("device", "cpu");
        String configName = a.getOrDefault("config", "large-structure");
        int size = Integer.parseInt(a.getOrDefault("size", "256"));
        int batch = Integer.parseInt(a.getOrDefault("batch", "1"));
        int warmup = Integer.parseInt(a.getOrDefault("warmup", "20"));
        int iters = Integer.parseInt(a.getOrDefault("iters", "30"));
        int count = Integer.parseInt(a.getOrDefault("count", "0"));
        ScalarType st = BenchSupport.dtype(a.getOrDefault("dtype", "f32"));
        boolean cuda = device.equals("cuda");
        Device d = cuda ? BenchSupport.cudaOrFail() : Devices.cpu();
        if (!cuda) {
            Torch.setThreads(1); // the arithmetic is not what is measured; one thread keeps the timing quiet
        }
        Sam2Config c = configName.equals("large-structure") ? largeStructure(size) : Sam2Config.preset(configName);

        System.out.printf(Locale.ROOT, "SAM2HOST javacpp: maxBytes=%d maxPhysicalBytes=%d (physicalBytes now %d)%n",
                Pointer.maxBytes(), Pointer.maxPhysicalBytes(), Pointer.physicalBytes());
        objectCosts();
        try (Sam2Model model = new Sam2Model(Sam2Weights.random(c, 1, st, d))) {
            int s = c.imageSize();
            Torch.seed(7);
            Tensor pixels = Torch.randn(ScalarType.Float, d, batch, 3, s, s).to(st);
            Sam2Prompt prompt = Sam2Prompt.language(Torch.randn(ScalarType.Float, d, batch, c.hidden()));
            Runnable sync = cuda ? BenchSupport::sync : () -> { };
            for (int i = 0; i < warmup; i++) {
                try (PointerScope scope = new PointerScope()) {
                    model.segment(pixels, prompt);
                }
                sync.run();
            }
            double[] host = new double[iters];
            double[] total = new double[iters];
            for (int i = 0; i < iters; i++) {
                long t0 = System.nanoTime(), t1;
                try (PointerScope scope = new PointerScope()) {
                    model.segment(pixels, prompt);
                    t1 = System.nanoTime(); // enqueued (CUDA) / computed (CPU); the scope's frees are counted below
                }
                sync.run();
                long t2 = System.nanoTime();
                host[i] = (t1 - t0) / 1e6;
                total[i] = (t2 - t0) / 1e6;
            }
            System.out.printf(Locale.ROOT, "SAM2HOST %s %s %dx%d² batch %d: host ms/forward median %.3f min %.3f, "
                    + "with frees%s median %.3f (%d iterations after %d warm-up)%n", configName, dtypeName(st), batch, s,
                    batch, median(host), min(host), cuda ? " and sync" : "", median(total), iters, warmup);
            if (a.getOrDefault("sample", "1").equals("1")) { // after the timing: sampling slows the thread down
                Sampler sampler = new Sampler(Thread.currentThread());
                for (int i = 0; i < iters; i++) {
                    try (PointerScope scope = new PointerScope()) {
                        model.segment(pixels, prompt);
                    }
                    sync.run();
                }
                sampler.stopAndPrint();
            }
            if (count > 0) {
                Map<String, Long> before = histogram();
                for (int i = 0; i < count; i++) {
                    try (PointerScope scope = new PointerScope()) {
                        model.segment(pixels, prompt);
                    }
                }
                sync.run();
                Map<String, Long> after = histogram();
                java.util.List<Map.Entry<String, Long>> grown = new java.util.ArrayList<>();
                long pointers = 0;
                for (var e : after.entrySet()) {
                    long n = e.getValue() - before.getOrDefault(e.getKey(), 0L);
                    if (n <= 0) {
                        continue;
                    }
                    if (e.getKey().startsWith("org.bytedeco.pytorch.") && !e.getKey().contains("$")) {
                        pointers += n;
                    }
                    grown.add(Map.entry(e.getKey(), n));
                }
                grown.sort((x, y) -> Long.compare(y.getValue(), x.getValue()));
                System.out.printf(Locale.ROOT, "SAM2HOST per forward: %.0f org.bytedeco.pytorch objects, %.0f "
                        + "native deallocators, %.0f pointer scopes (class histogram over %d forwards; exact only "
                        + "with -XX:+UseEpsilonGC)%n", (double) pointers / count,
                        perForward(before, after, "org.bytedeco.javacpp.Pointer$NativeDeallocator", count),
                        perForward(before, after, "org.bytedeco.javacpp.PointerScope", count), count);
                for (var e : grown.subList(0, Math.min(30, grown.size()))) {
                    System.out.printf(Locale.ROOT, "SAM2HOST   %10.1f  %s%n", (double) e.getValue() / count, e.getKey());
                }
            }
            pixels.close();
        }
    }

    /**
     * A sampling profiler of the forward loop's thread (JFR is not in the GPU host's runtime image): every ~1 ms the
     * top frame, so native calls show as the JNI method (e.g. {@code torch.scaled_dot_product_attention}); the
     * sample is taken when the thread reaches a safepoint, so pure-Java time can be attributed to the next one.
     * Includes the few untimed frees and syncs between calls.
     */
    static final class Sampler extends Thread {
        private final Thread target;
        private final Map<String, Integer> top = new java.util.HashMap<>();
        private volatile boolean running = true;
        private int samples, inNative;

        Sampler(Thread target) {
            this.target = target;
            setDaemon(true);
            start();
        }

        @Override
        public void run() {
            while (running) {
                StackTraceElement[] st = target.getStackTrace();
                if (st.length > 0) {
                    synchronized (this) {
                        samples++;
                        inNative += st[0].isNativeMethod() ? 1 : 0;
                        String cls = st[0].getClassName();
                        top.merge(cls.substring(cls.lastIndexOf('.') + 1) + "." + st[0].getMethodName(), 1,
                                Integer::sum);
                    }
                }
                try {
                    Thread.sleep(1);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }

        void stopAndPrint() throws InterruptedException {
            running = false;
            join();
            java.util.List<Map.Entry<String, Integer>> l = new java.util.ArrayList<>(top.entrySet());
            l.sort((x, y) -> y.getValue() - x.getValue());
            StringBuilder b = new StringBuilder();
            for (var e : l.subList(0, Math.min(15, l.size()))) {
                b.append(String.format(Locale.ROOT, " %s %.1f%%;", e.getKey(), 100.0 * e.getValue() / samples));
            }
            System.out.printf(Locale.ROOT, "SAM2HOST samples %d, %.1f%% in native methods; top frames:%s%n", samples,
                    100.0 * inNative / Math.max(1, samples), b);
        }
    }

    /**
     * What one JavaCPP object that owns native memory costs on this host (create + register + free), and the
     * resident-memory read JavaCPP makes at each registration unless maxPhysicalBytes is 0.
     */
    static void objectCosts() {
        int n = 20000;
        double[] statm = new double[5], object = new double[5], scope = new double[5];
        for (int r = 0; r < 5; r++) {
            long t0 = System.nanoTime();
            long sink = 0;
            for (int i = 0; i < n; i++) {
                sink += Pointer.physicalBytes();
            }
            long t1 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                try (org.bytedeco.pytorch.TensorOptional o = new org.bytedeco.pytorch.TensorOptional()) {
                    sink += o.has_value() ? 1 : 0;
                }
            }
            long t2 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                try (PointerScope sc = new PointerScope()) {
                    sink += sc.hashCode() & 1;
                }
            }
            long t3 = System.nanoTime();
            statm[r] = (t1 - t0) / 1e3 / n;
            object[r] = (t2 - t1) / 1e3 / n;
            scope[r] = (t3 - t2) / 1e3 / n;
            if (sink == 42) {
                System.out.print("");
            }
        }
        System.out.printf(Locale.ROOT, "SAM2HOST per call: Pointer.physicalBytes() %.3f us, owning JavaCPP object "
                + "(new + close) %.3f us, empty PointerScope (open + close) %.3f us (medians of 5 x %d)%n",
                median(statm), median(object), median(scope), n);
    }

    private static double perForward(Map<String, Long> before, Map<String, Long> after, String cls, int n) {
        return (double) (after.getOrDefault(cls, 0L) - before.getOrDefault(cls, 0L)) / n;
    }

    /** Instances per class of every heap object, reachable or not ({@code GC.class_histogram -all}). */
    static Map<String, Long> histogram() throws Exception {
        String text = (String) ManagementFactory.getPlatformMBeanServer().invoke(
                new ObjectName("com.sun.management:type=DiagnosticCommand"), "gcClassHistogram",
                new Object[] {new String[] {"-all"}}, new String[] {String[].class.getName()});
        Map<String, Long> m = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            String[] f = line.trim().split("\\s+");
            // "  1:   123   4567  java.lang.String (java.base@17)"
            if (f.length >= 4 && f[0].endsWith(":")) {
                try {
                    m.merge(f[3], Long.parseLong(f[1]), Long::sum);
                } catch (NumberFormatException ignored) {
                    // header or total line
                }
            }
        }
        return m;
    }

    private static String dtypeName(ScalarType st) {
        return st == ScalarType.Float ? "f32" : st == ScalarType.BFloat16 ? "bf16" : "f16";
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    private static double min(double[] v) {
        return Arrays.stream(v).min().orElse(Double.NaN);
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("expected --key value pairs, got " + Arrays.toString(args)
                        + " (keys: device, config, size, batch, dtype, warmup, iters, count, sample)");
            }
            m.put(args[i].substring(2), args[++i]);
        }
        return m;
    }
}
