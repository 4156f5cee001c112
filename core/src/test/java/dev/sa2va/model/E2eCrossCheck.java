package dev.sa2va.model;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.data.SyntheticFundus;
import dev.sa2va.io.ImageFiles;
import dev.sa2va.io.Images;
import dev.sa2va.io.SafeTensors;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Context;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Java side of the end-to-end cross-check against HF transformers (core/verification/e2e): writes synthetic fundus
 * images of several sizes as PNG, runs the whole Sa2VA path on each (forced answer "Sure, [SEG].", Sa2VA's
 * evaluation prompt) in float32 (TF32 off) and bf16, and saves per image the prompt ids, the [SEG] count, the mask
 * logits at the original resolution, the 256² low-resolution logits, SAM2's three predicted IoUs, the selected
 * output and the [SEG] prompt embedding. {@code e2e_reference.py check} then runs HF's InternVL + Sam2Model wired as
 * Sa2VA on the same PNGs and weights and compares.
 *
 * <pre>
 * java ... dev.sa2va.model.E2eCrossCheck MODEL_DIR OUT_DIR [--dtypes fp32,bf16] [--count 8] [--device cuda]
 * </pre>
 * Files: {@code OUT_DIR/images/img{i}.png}, {@code OUT_DIR/java_{dtype}.safetensors}, {@code OUT_DIR/java.json}.
 * A model folder without tokenizer.json uses {@link ByteTokenizer#forModel} (the host's random-weight checkpoints).
 */
public final class E2eCrossCheck {
    public static final String PROMPT = "<image>\n Please segment blood vessels in this image.";
    public static final String ANSWER = "Sure, [SEG].";
    /** (width, height): DRIVE, STARE, CHASE_DB1, square 1024, landscape and portrait, a wide and a small one. */
    static final int[][] SIZES = {{565, 584}, {700, 605}, {999, 960}, {1024, 1024}, {640, 480}, {480, 640},
        {1024, 512}, {300, 280}};

    private E2eCrossCheck() {
    }

    public static void main(String[] argv) throws Exception {
        if (argv.length < 2) {
            System.err.println("usage: E2eCrossCheck MODEL_DIR OUT_DIR [--dtypes fp32,bf16] [--count 8] [--device cuda]");
            System.exit(2);
        }
        String dtypes = "fp32,bf16", device = Devices.torchCudaAvailable() ? "cuda:0" : "cpu";
        int count = SIZES.length;
        for (int i = 2; i + 1 < argv.length; i += 2) {
            switch (argv[i]) {
                case "--dtypes" -> dtypes = argv[i + 1];
                case "--count" -> count = Integer.parseInt(argv[i + 1]);
                case "--device" -> device = argv[i + 1];
                default -> throw new IllegalArgumentException("unknown option " + argv[i]);
            }
        }
        JsonObject r = run(Path.of(argv[0]), Path.of(argv[1]), List.of(dtypes.split(",")), count, SIZES, device, 20240611);
        System.out.println(new GsonBuilder().setPrettyPrinting().create().toJson(r.get("summary")));
    }

    /** Runs everything; returns the contents of java.json. */
    static JsonObject run(Path modelDir, Path out, List<String> dtypes, int count, int[][] sizes, String device,
                          long seed) throws Exception {
        Files.createDirectories(out.resolve("images"));
        long t0 = System.nanoTime();
        // images in parallel (SyntheticFundus is CPU-heavy at 1024²), written as PNG: both sides read these bytes
        List<Path> files = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            files.add(out.resolve("images").resolve(String.format("img%d.png", i)));
        }
        IntStream.range(0, count).parallel().forEach(i -> {
            int[] wh = sizes[i % sizes.length];
            try (PointerScope s = new PointerScope()) {
                Tensor img = SyntheticFundus.generate(SyntheticFundus.Config.defaults().withSize(wh[0], wh[1]),
                        seed + i).image();
                ImageFiles.write(ImageFiles.rgbImage(img), files.get(i));
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        JsonObject report = new JsonObject();
        report.addProperty("model", modelDir.toString());
        report.addProperty("device", device);
        report.addProperty("prompt", PROMPT);
        report.addProperty("answer", ANSWER);
        report.addProperty("images_seconds", (System.nanoTime() - t0) / 1e9);
        JsonObject summary = new JsonObject();
        for (String dt : dtypes) {
            ScalarType st = switch (dt) {
                case "fp32" -> ScalarType.Float;
                case "bf16" -> ScalarType.BFloat16;
                default -> throw new IllegalArgumentException("dtype " + dt + " (fp32, bf16)");
            };
            boolean cuda = device.startsWith("cuda");
            if (cuda) {
                // the fp32 reference runs with TF32 off; libtorch enables it for cuDNN convolutions by default
                Context c = torch.globalContext();
                c.setAllowTF32CuBLAS(false);
                c.setAllowTF32CuDNN(st != ScalarType.Float);
                c.setFloat32MatmulPrecision("highest");
            }
            JsonObject d = new JsonObject();
            long tl = System.nanoTime();
            Sa2VA.Options o = Sa2VA.Options.defaults().withDevice(device).withDtype(st);
            if (!Files.isRegularFile(modelDir.resolve("tokenizer.json"))) {
                o = o.withTokenizer(ByteTokenizer.forModel(modelDir));
            }
            Map<String, Tensor> saved = new LinkedHashMap<>();
            JsonArray per = new JsonArray();
            try (PointerScope scope = new PointerScope(); Sa2VA model = Sa2VA.load(modelDir, o)) {
                d.addProperty("load_seconds", (System.nanoTime() - tl) / 1e9);
                d.addProperty("model", model.describe());
                d.addProperty("tokenizer", model.tokenizer().describe());
                for (int i = 0; i < count; i++) {
                    long ti = System.nanoTime();
                    BufferedImage bi = Images.read(files.get(i));
                    JsonObject e = new JsonObject();
                    e.addProperty("file", files.get(i).getFileName().toString());
                    e.addProperty("width", bi.getWidth());
                    e.addProperty("height", bi.getHeight());
                    try (PreparedImage img = model.prepare(bi)) {
                        Segmentation s = model.segment(img, PROMPT, Generation.forced(ANSWER));
                        long[] ids = model.promptIds(PROMPT, img.tiles());
                        e.addProperty("grid", img.columns() + "x" + img.rows());
                        e.addProperty("tiles", img.tiles());
                        e.addProperty("prompt_tokens", s.promptTokens());
                        e.addProperty("n_seg", s.masks().size());
                        String k = "img" + i + ".";
                        saved.put(k + "prompt_ids", Torch.fromLongs(ids, ids.length));
                        for (int j = 0; j < s.masks().size(); j++) {
                            SegMask m = s.masks().get(j);
                            String kj = k + "seg" + j + ".";
                            saved.put(kj + "logits", m.logits().cpu());
                            saved.put(kj + "low_res", m.lowResLogits().cpu());
                            saved.put(kj + "prompt_embedding", m.promptEmbedding().to(Devices.cpu(), ScalarType.Float));
                            double[] ious = m.iouScores();
                            float[] f = new float[ious.length];
                            for (int q = 0; q < f.length; q++) {
                                f[q] = (float) ious[q];
                            }
                            saved.put(kj + "iou", Torch.fromFloats(f, f.length));
                            saved.put(kj + "selected", Torch.fromLongs(new long[] {m.selectedOutput()}, 1));
                            JsonArray iou = new JsonArray();
                            for (double v : ious) {
                                iou.add(v);
                            }
                            e.add("seg" + j + "_iou", iou);
                            e.addProperty("seg" + j + "_selected", m.selectedOutput());
                            e.addProperty("seg" + j + "_foreground", m.binary().to(ScalarType.Float).mean().item().toDouble());
                        }
                    }
                    e.addProperty("seconds", (System.nanoTime() - ti) / 1e9);
                    per.add(e);
                    System.err.printf("%s %s: %s%n", dt, files.get(i).getFileName(), e);
                }
                SafeTensors.save(out.resolve("java_" + dt + ".safetensors"), saved, Map.of("dtype", dt, "device", device));
            }
            d.add("images", per);
            summary.add(dt, d);
        }
        report.add("summary", summary);
        Files.writeString(out.resolve("java.json"), new GsonBuilder().setPrettyPrinting()
                .serializeSpecialFloatingPointValues().create().toJson(report));
        return report;
    }
}
