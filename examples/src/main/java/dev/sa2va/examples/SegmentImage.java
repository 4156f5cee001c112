package dev.sa2va.examples;

import dev.sa2va.core.Torch;
import dev.sa2va.io.ImageFiles;
import dev.sa2va.io.Images;
import dev.sa2va.model.Generation;
import dev.sa2va.model.PreparedImage;
import dev.sa2va.model.Sa2VA;
import dev.sa2va.model.SegMask;
import dev.sa2va.model.Segmentation;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Segments one image with Sa2VA from a text prompt: prints the answer and, per [SEG], the predicted IoU and the
 * foreground share, and writes the binary mask and the probability map as PNGs.
 *
 * <pre>
 * mvn -q -DskipTests -pl examples -am package exec:java -Dexample.main=dev.sa2va.examples.SegmentImage \
 *     -Dexec.args="--model path/to/Sa2VA-1B fundus.png 'Please segment the blood vessels.' --out vessels.png"
 * </pre>
 * Writes {@code vessels.png} (255 where p &gt; threshold) and {@code vessels_prob.png} (p as 8-bit gray); further
 * [SEG] masks get {@code _1}, {@code _2}, ... Options: {@code --threshold 0.5}, {@code --force-answer "Sure, [SEG]."}
 * (teacher-forced answer instead of generation, see {@link Generation}), {@code --max-new-tokens N} (2048),
 * {@code --max-tiles N} (12), {@code --device cpu|cuda}, {@code --dtype bf16|fp32} (bf16 on CUDA, fp32 on the CPU),
 * {@code --byte-tokenizer} (a folder without tokenizer.json: random-weight test checkpoints only).
 * {@code --model random:tiny} (or {@code random:sa2va-1b}, {@code random:sa2va-4b}) runs the whole path with random
 * weights: it shows that everything is wired, the masks mean nothing.
 */
public final class SegmentImage {
    public static void main(String[] argv) throws Exception {
        int status = run(argv);
        if (status != 0) {
            System.exit(status);
        }
    }

    /** The program; returns the exit status (2: bad arguments, 1: no [SEG] in the answer). */
    static int run(String[] argv) throws Exception {
        Args a;
        try {
            a = new Args(argv, Set.of("byte-tokenizer"), Set.of("model", "out", "threshold", "force-answer",
                    "max-new-tokens", "max-tiles", "device", "dtype"));
            if (a.positional.size() != 2 || a.get("model", null) == null) {
                throw new IllegalArgumentException("need --model, an image and a prompt");
            }
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.err.println("usage: SegmentImage --model DIR|random:NAME IMAGE PROMPT [--out mask.png] [--threshold T] "
                    + "[--force-answer TEXT] [--max-new-tokens N] [--max-tiles N] [--device cpu|cuda] [--dtype bf16|fp32] "
                    + "[--byte-tokenizer]");
            return 2;
        }
        Torch.setThreads(Integer.getInteger("sa2va.threads", Math.max(1, Runtime.getRuntime().availableProcessors())));
        Sa2VA.Options o = options(a);
        Path imageFile = Path.of(a.positional.get(0));
        String prompt = a.positional.get(1);
        Path out = Path.of(a.get("out", "mask.png"));
        double threshold = a.number("threshold", 0.5);
        Generation g = a.get("force-answer", null) != null ? Generation.forced(a.get("force-answer", null))
                : Generation.defaults();
        g = g.withMaxNewTokens(a.integer("max-new-tokens", Generation.SA2VA_MAX_NEW_TOKENS)).withThreshold(threshold);

        long t0 = System.nanoTime();
        try (Sa2VA model = ModelSpec.open(a.get("model", null), o, a.flag("byte-tokenizer"));
             PointerScope scope = new PointerScope()) {
            System.out.printf(Locale.ROOT, "model: %s (loaded in %.1f s)%n", model.describe(), (System.nanoTime() - t0) / 1e9);
            BufferedImage image = Images.read(imageFile);
            long t1 = System.nanoTime();
            try (PreparedImage img = model.prepare(image)) {
                Segmentation s = model.segment(img, prompt, g);
                System.out.printf(Locale.ROOT, "image: %s, %dx%d, %d tiles (grid %dx%d), prompt %d tokens, %.2f s%n",
                        imageFile, img.width(), img.height(), img.tiles(), img.columns(), img.rows(), s.promptTokens(),
                        (System.nanoTime() - t1) / 1e9);
                System.out.println("answer" + (g.isForced() ? " (forced)" : "") + ": " + s.text());
                if (s.masks().isEmpty()) {
                    System.out.println("no [SEG] in the answer: no mask");
                    return 1;
                }
                for (int i = 0; i < s.masks().size(); i++) {
                    SegMask m = s.masks().get(i);
                    Path maskFile = suffixed(out, i == 0 ? "" : "_" + i);
                    Path probFile = suffixed(out, (i == 0 ? "" : "_" + i) + "_prob");
                    ImageFiles.write(ImageFiles.maskImage(m.binary().to(ScalarType.Byte).cpu()), maskFile);
                    ImageFiles.write(gray(m.probabilities()), probFile);
                    double share = m.binary().to(ScalarType.Float).mean().item().toDouble();
                    System.out.printf(Locale.ROOT, "mask %d: predicted IoU %.3f, foreground %.2f%% at p > %.2f -> %s, %s%n",
                            i, m.iouScore(), 100 * share, threshold, maskFile, probFile);
                }
            }
        }
        return 0;
    }

    static Sa2VA.Options options(Args a) {
        Sa2VA.Options o = Sa2VA.Options.defaults();
        if (a.get("device", null) != null) {
            o = o.withDevice(a.get("device", null));
        }
        String dt = a.get("dtype", null);
        if (dt != null) {
            o = o.withDtype(switch (dt) {
                case "bf16", "bfloat16" -> ScalarType.BFloat16;
                case "fp32", "float32" -> ScalarType.Float;
                default -> throw new IllegalArgumentException("--dtype: bf16 or fp32, got " + dt);
            });
        }
        return o.withMaxTiles(a.integer("max-tiles", o.maxTiles()));
    }

    /** "dir/mask.png" + "_prob" → "dir/mask_prob.png". */
    static Path suffixed(Path p, String suffix) {
        String n = p.getFileName().toString();
        int dot = n.lastIndexOf('.');
        String name = dot < 0 ? n + suffix + ".png" : n.substring(0, dot) + suffix + n.substring(dot);
        return p.resolveSibling(name);
    }

    /** Probabilities [H, W] in [0, 1] as an 8-bit gray image (round(255 p)). */
    static BufferedImage gray(org.bytedeco.pytorch.Tensor p) {
        int h = (int) p.size(0), w = (int) p.size(1);
        byte[] b = Torch.toBytes(p.mul(Torch.scalar(255.0)).round().to(ScalarType.Byte));
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_BYTE_GRAY);
        img.getRaster().setDataElements(0, 0, w, h, b);
        return img;
    }
}
