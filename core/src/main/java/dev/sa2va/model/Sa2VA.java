package dev.sa2va.model;

import dev.sa2va.core.Devices;
import dev.sa2va.core.JavaCppDefaults;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import dev.sa2va.io.Checkpoint;
import dev.sa2va.io.Images;
import dev.sa2va.mllm.ChatTemplate;
import dev.sa2va.mllm.DynamicTiling;
import dev.sa2va.mllm.Generator;
import dev.sa2va.mllm.MllmWeights;
import dev.sa2va.mllm.PilResize;
import dev.sa2va.mllm.Probe;
import dev.sa2va.mllm.Sa2vaConfig;
import dev.sa2va.mllm.Sa2vaMllm;
import dev.sa2va.mllm.Scope;
import dev.sa2va.sam2.ImageFeatures;
import dev.sa2va.sam2.Sam2Config;
import dev.sa2va.sam2.Sam2Model;
import dev.sa2va.sam2.Sam2Output;
import dev.sa2va.sam2.Sam2Preprocessor;
import dev.sa2va.sam2.Sam2Prompt;
import dev.sa2va.sam2.Sam2Weights;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Sa2VA end to end: image + prompt → answer text and one mask per [SEG] token, at the image's resolution, with
 * probabilities. Built from a Sa2VA model folder ({@link #load}) or with random weights at real dimensions
 * ({@link #random}, for benchmarks).
 *
 * <pre>{@code
 * try (Sa2VA model = Sa2VA.load(Path.of("Sa2VA-1B"));
 *      Segmentation s = model.segment(Path.of("fundus.png"), "Please segment the blood vessels.")) {
 *     System.out.println(s.text());                 // e.g. "Sure, [SEG].<|im_end|>"
 *     Tensor p = s.mask().probabilities();          // [H, W] float32
 *     Tensor m = s.mask().binary();                 // [H, W] bool, Sa2VA's mask (p > 0.5)
 * }
 * }</pre>
 *
 * <p>The path, as Sa2VA's {@code predict_forward}: the image is tiled for the MLLM (InternVL dynamic tiling, up to 12
 * tiles + thumbnail, Pillow-exact resizing) and stretched to 1024² for SAM2 (Pillow-exact, no letterbox); the prompt
 * gets Sa2VA's image tokens and the model's chat template; the MLLM answers (greedy generation, or a forced answer,
 * see {@link Generation}); the final-normed hidden state of each [SEG] goes through {@code text_hidden_fcs} into
 * SAM2's prompt encoder (two not-a-point tokens + the language embedding); the mask decoder's three outputs are
 * reduced to the one with the highest predicted IoU; its 256² logits are resized bilinearly to 1024² and then to the
 * image size. Differences from Sa2VA's Python: SAM2's input normalisation is computed in float32 and then cast
 * (Sa2VA computes it in bf16); the logits and probabilities are kept (Sa2VA returns only {@code sigmoid > 0.5}).
 *
 * <p>Image features are computed once per image ({@link #prepare}) and reused for any number of prompts. Memory:
 * weights in the compute dtype (bf16 on CUDA by default); one image and one prompt at a time; every step frees its
 * intermediates. A CUDA out-of-memory error surfaces as the libtorch exception; {@link Sa2vaSegmenter} turns it into
 * retries with fewer tiles. Not thread-safe: one caller at a time.
 */
public final class Sa2VA implements AutoCloseable {
    static {
        JavaCppDefaults.apply(); // before any JavaCPP class initialises (see JavaCppDefaults)
    }

    /** Module prefixes of a Sa2VA checkpoint; tensors outside them mean an architecture this code does not know. */
    static final List<String> MODULE_PREFIXES = List.of("vision_model.", "mlp1.", "language_model.", "text_hidden_fcs.",
            Sam2Weights.SA2VA_PREFIX);

    /**
     * @param device    "cpu", "cuda", "cuda:N"
     * @param dtype     Float or BFloat16; null = bf16 on CUDA, float32 on the CPU
     * @param maxTiles  MLLM tile limit, 1..12 (Sa2VA: 12)
     * @param tokenizer null = the model folder's {@code tokenizer.json}; the model closes it
     */
    public record Options(String device, ScalarType dtype, int maxTiles, TextTokenizer tokenizer) {
        public Options {
            if (device == null || !(device.equals("cpu") || device.matches("cuda(:\\d+)?"))) {
                throw new IllegalArgumentException("device must be cpu, cuda or cuda:N, got " + device);
            }
            if (dtype != null && dtype != ScalarType.Float && dtype != ScalarType.BFloat16) {
                throw new IllegalArgumentException("dtype must be Float or BFloat16, got " + dtype);
            }
            if (maxTiles < 1 || maxTiles > DynamicTiling.MAX_TILES) {
                throw new IllegalArgumentException("maxTiles must be in [1, " + DynamicTiling.MAX_TILES + "], got "
                        + maxTiles);
            }
        }

        /** The first CUDA device if libtorch sees one, else the CPU; bf16 on CUDA; 12 tiles. */
        public static Options defaults() {
            return new Options(Devices.torchCudaAvailable() ? "cuda:0" : "cpu", null, DynamicTiling.MAX_TILES, null);
        }

        public Options withDevice(String d) {
            return new Options(d, dtype, maxTiles, tokenizer);
        }

        public Options withDevice(Device d) {
            return withDevice(Devices.describe(d));
        }

        public Options withDtype(ScalarType t) {
            return new Options(device, t, maxTiles, tokenizer);
        }

        public Options withMaxTiles(int n) {
            return new Options(device, dtype, n, tokenizer);
        }

        public Options withTokenizer(TextTokenizer t) {
            return new Options(device, dtype, maxTiles, t);
        }

        ScalarType resolvedDtype() {
            return dtype != null ? dtype : device.startsWith("cuda") ? ScalarType.BFloat16 : ScalarType.Float;
        }
    }

    /** One request of the batch API. */
    public record Request(BufferedImage image, String prompt) {
        public Request {
            if (image == null) {
                throw new IllegalArgumentException("request image: null");
            }
            if (prompt == null || prompt.isBlank()) {
                throw new IllegalArgumentException("request prompt: empty");
            }
        }
    }

    private final String name;
    private final Sa2vaConfig cfg;
    private final Sa2vaMllm mllm;
    private final Sam2Model sam;
    private final TextTokenizer tok;
    private final ChatTemplate template;
    private final Options options;
    private final ScalarType dtype;
    private final Device device;
    private final long imgContextId;
    private final long segId;
    private final long[] stopIds;
    private ExecutorService pool;
    private boolean closed;

    private Sa2VA(String name, Sa2vaMllm mllm, Sam2Model sam, TextTokenizer tok, Options options, Device device) {
        this.name = name;
        this.cfg = mllm.config();
        this.mllm = mllm;
        this.sam = sam;
        this.tok = tok;
        this.options = options;
        this.dtype = options.resolvedDtype();
        this.device = device;
        this.template = ChatTemplate.byName(cfg.template());
        long vocab = mllm.llm().vocabSize();
        if (sam.config().hidden() != mllm.seg().outFeatures()) {
            throw new IllegalArgumentException("text_hidden_fcs gives " + mllm.seg().outFeatures()
                    + "-wide prompt embeddings but SAM2's prompt width is " + sam.config().hidden());
        }
        for (String t : List.of(ChatTemplate.IMG_START, ChatTemplate.IMG_END, ChatTemplate.IMG_CONTEXT, ChatTemplate.SEG)) {
            if (!tok.hasToken(t)) {
                throw new IllegalArgumentException(tok.describe() + ": no added token '" + t + "' (Sa2VA needs <img>, "
                        + "</img>, <IMG_CONTEXT> and [SEG])");
            }
            if (tok.tokenId(t) >= vocab) {
                throw new IllegalArgumentException(tok.describe() + ": token '" + t + "' has id " + tok.tokenId(t)
                        + ", beyond the model's " + vocab + " embeddings");
            }
        }
        this.imgContextId = tok.tokenId(ChatTemplate.IMG_CONTEXT);
        this.segId = tok.tokenId(ChatTemplate.SEG);
        // eos of Sa2VA's Qwen tokenizers is <|im_end|>; the template's stop words end generation too (as tokens
        // where the tokenizer has them, as decoded text otherwise: phi3's <|end|> is plain text for Qwen)
        Set<String> stops = new LinkedHashSet<>(template.stopWords());
        stops.add("<|im_end|>");
        stops.add("<|endoftext|>");
        this.stopIds = stops.stream().filter(tok::hasToken).mapToLong(tok::tokenId).filter(i -> i < vocab).toArray();
    }

    /** {@link #load(Path, Options)} with {@link Options#defaults()}. */
    public static Sa2VA load(Path dir) throws IOException {
        return load(dir, Options.defaults());
    }

    /**
     * Loads a Sa2VA model folder: {@code config.json} (Sa2VAChatConfig; Qwen2-based models: Sa2VA-1B, -4B,
     * InternVL3-based), the weights ({@code model.safetensors} or shards + {@code model.safetensors.index.json};
     * fp32 or bf16 storage, cast to the compute dtype as read) and {@code tokenizer.json} (unless the options give
     * a tokenizer). Every problem is an IOException naming the file and, where there is one, the key: a missing or
     * mis-shaped tensor, a tensor outside Sa2VA's modules, an unsupported configuration value.
     */
    public static Sa2VA load(Path dir, Options options) throws IOException {
        if (dir == null || !Files.isDirectory(dir)) {
            throw new IOException("Sa2VA model folder not found: " + dir);
        }
        Options o = options == null ? Options.defaults() : options;
        Sa2vaConfig cfg = Sa2vaConfig.read(dir);
        Sam2Config samCfg = Sa2vaArchitecture.readSam2Config(dir);
        try (Checkpoint ck = Checkpoint.open(dir)) {
            List<String> foreign = new ArrayList<>();
            for (String k : ck.keys()) {
                if (MODULE_PREFIXES.stream().noneMatch(k::startsWith)) {
                    foreign.add(k);
                }
            }
            if (!foreign.isEmpty()) {
                throw new IOException(dir + ": tensors outside Sa2VA's modules " + MODULE_PREFIXES + " (another "
                        + "architecture?): " + (foreign.size() > 8 ? foreign.subList(0, 8) + " ... (" + foreign.size()
                        + " in all)" : foreign));
            }
        }
        TextTokenizer tok = o.tokenizer();
        if (tok == null) {
            if (!Files.isRegularFile(dir.resolve("tokenizer.json"))) {
                throw new IOException(dir + ": no tokenizer.json (give a tokenizer with Options.withTokenizer; a "
                        + "random-weight test model can use ByteTokenizer.forModel(dir))");
            }
            tok = TextTokenizer.huggingFace(dir);
        }
        ScalarType dt = o.resolvedDtype();
        Sa2vaMllm mllm = null;
        Sam2Model sam = null;
        // outside every scope: the layers keep using this Device object; released by close()
        Device dev = Scope.pin(new Device(o.device()));
        try (PointerScope scope = new PointerScope()) {
            mllm = MllmWeights.load(dir, dt, dev);
            sam = Sam2Model.load(dir, samCfg, Sam2Weights.SA2VA_PREFIX, dt, dev);
            return new Sa2VA(dir.getFileName().toString(), mllm, sam, tok, o, dev);
        } catch (IOException | RuntimeException e) {
            closeQuietly(mllm, sam, o.tokenizer() == null ? tok : null, dev);
            if (e instanceof IllegalArgumentException) {
                throw new IOException(dir + ": " + e.getMessage(), e);
            }
            throw e;
        }
    }

    /**
     * A model with seeded random weights at the dimensions of {@code arch} (e.g. {@link Sa2vaArchitecture#sa2va4b()}),
     * built directly on the options' device: for memory and speed measurements without multi-GB files. The
     * tokenizer defaults to {@link ByteTokenizer#qwen()}.
     */
    public static Sa2VA random(Sa2vaArchitecture arch, long seed, Options options) {
        Options o = options == null ? Options.defaults() : options;
        TextTokenizer tok = o.tokenizer() != null ? o.tokenizer() : ByteTokenizer.qwen();
        ScalarType dt = o.resolvedDtype();
        Sa2vaMllm mllm = null;
        Sam2Model sam = null;
        Device dev = Scope.pin(new Device(o.device()));
        try (PointerScope scope = new PointerScope()) {
            mllm = MllmWeights.random(arch.mllm(), arch.vocab(), seed, dt, dev);
            sam = new Sam2Model(Sam2Weights.random(arch.sam2(), seed + 1, dt, dev));
            return new Sa2VA(arch.name() + " (random weights, seed " + seed + ")", mllm, sam, tok, o.withTokenizer(tok),
                    dev);
        } catch (RuntimeException e) {
            closeQuietly(mllm, sam, o.tokenizer() == null ? tok : null, dev);
            throw e;
        }
    }

    private static void closeQuietly(AutoCloseable... cs) {
        for (AutoCloseable c : cs) {
            if (c != null) {
                try {
                    c.close();
                } catch (Exception ignored) {
                    // the original failure is the one to report
                }
            }
        }
    }

    // ---- images ---------------------------------------------------------------------------------------------

    /** {@link #prepare(byte[], int, int, int)} of an image file (PNG, JPEG, GIF, BMP, TIFF, PPM/PGM). */
    public PreparedImage prepare(Path imageFile) throws IOException {
        return prepare(Images.read(imageFile));
    }

    /** {@link #prepare(byte[], int, int, int)} of a decoded image (gray replicated to RGB, alpha dropped). */
    public PreparedImage prepare(BufferedImage image) {
        if (image == null) {
            throw new IllegalArgumentException("image: null");
        }
        byte[] rgb;
        try (PointerScope s = new PointerScope()) {
            rgb = Torch.toBytes(Images.rgbTensor(image));
        }
        return prepare(rgb, image.getWidth(), image.getHeight(), options.maxTiles());
    }

    /** {@link #prepare(byte[], int, int, int)} of a uint8 {@code [H, W, 3]} RGB tensor (any device). */
    public PreparedImage prepare(Tensor rgb, int maxTiles) {
        TensorCheck.of("image", rgb).dtype(ScalarType.Byte).dims(3).nonEmpty();
        if (rgb.size(2) != 3) {
            throw new IllegalArgumentException("image: expected [H, W, 3] RGB, got " + TensorCheck.shapeString(rgb));
        }
        byte[] bytes;
        try (PointerScope s = new PointerScope()) {
            bytes = Torch.toBytes(rgb);
        }
        return prepare(bytes, (int) rgb.size(1), (int) rgb.size(0), maxTiles);
    }

    /**
     * Computes the image features of an RGB image ({@code rgb}: interleaved bytes, row-major, {@code 3·width·height})
     * with at most {@code maxTiles} MLLM tiles: SAM2's input (Pillow-exact stretch to 1024², ImageNet normalisation)
     * and image encoder, and the MLLM's tiles (on a helper thread, while SAM2 runs) through InternViT, pixel
     * shuffle and mlp1. The result owns its device memory until closed.
     */
    public PreparedImage prepare(byte[] rgb, int width, int height, int maxTiles) {
        checkOpen();
        if (width <= 0 || height <= 0) {
            throw new IllegalArgumentException("image: size must be positive, got " + width + "x" + height);
        }
        if (rgb == null || rgb.length != 3L * width * height) {
            throw new IllegalArgumentException("image: expected " + 3L * width * height + " RGB bytes for " + width + "x"
                    + height + ", got " + (rgb == null ? "null" : rgb.length));
        }
        DynamicTiling tiling = new DynamicTiling(cfg.vision().imageSize(), maxTiles);
        long[] tilingNanos = new long[1];
        Future<DynamicTiling.Tiles> tilesF = executor().submit(() -> {
            long t = System.nanoTime();
            try (PointerScope s = new PointerScope()) {
                DynamicTiling.Tiles r = tiling.tiles(rgb, width, height);
                r.pixelValues().retainReference(); // released by prepare, on the caller's thread
                tilingNanos[0] = System.nanoTime() - t;
                return r;
            }
        });
        DynamicTiling.Tiles tiles = null;
        try (NoGradGuard g = new NoGradGuard(); PointerScope scope = new PointerScope()) {
            long t0 = System.nanoTime();
            Tensor px = samPixels(rgb, width, height, sam.config().imageSize());
            long samNanos = System.nanoTime() - t0;
            ImageFeatures f = sam.encode(px);
            tiles = await(tilesF);
            Tensor tokens = mllm.imageFeatures(tiles.pixelValues(), Probe.NONE);
            PreparedImage p = new PreparedImage(this, width, height, tiles.columns(), tiles.rows(), maxTiles, tokens, f,
                    (samNanos + tilingNanos[0]) / 1e6);
            // the features outlive this scope (and the caller's): PreparedImage.close releases them
            tokens.retainReference();
            f.imageEmbedding().retainReference();
            f.featS0().retainReference();
            f.featS1().retainReference();
            return p;
        } finally {
            if (tiles == null) {
                try {
                    tiles = tilesF.get(); // a failure above: wait for the helper, to free what it made
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } catch (ExecutionException e) {
                    // already reported, or superseded by the failure in progress
                }
            }
            if (tiles != null) {
                tiles.pixelValues().close();
            }
        }
    }

    private static <T> T await(Future<T> f) {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while tiling the image", e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException r) {
                throw r;
            }
            if (c instanceof Error err) {
                throw err;
            }
            throw new IllegalStateException(c);
        }
    }

    /**
     * SAM2's input: Pillow's default resize to {@code size²} then ToTensor and ImageNet normalisation in float32 on
     * the CPU, with torchvision's operation order (x / 255, − mean, / std), so that a Python reference gets the
     * same bits; (1, 3, size, size).
     */
    static Tensor samPixels(byte[] rgb, int width, int height, int size) {
        byte[] sq = PilResize.resize(rgb, width, height, size, size);
        int plane = size * size;
        float[] px = new float[3 * plane];
        for (int c = 0; c < 3; c++) {
            float m = Sam2Preprocessor.MEAN[c], s = Sam2Preprocessor.STD[c];
            for (int p = 0; p < plane; p++) {
                px[c * plane + p] = ((sq[p * 3 + c] & 0xff) / 255f - m) / s;
            }
        }
        return Torch.fromFloats(px, 1, 3, size, size);
    }

    private synchronized ExecutorService executor() {
        if (pool == null) {
            pool = Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "sa2va-tiling");
                t.setDaemon(true);
                return t;
            });
        }
        return pool;
    }

    // ---- segmentation ---------------------------------------------------------------------------------------

    /** Segments with {@link Generation#defaults()} (generated answer, as Sa2VA). */
    public Segmentation segment(Path imageFile, String prompt) throws IOException {
        try (PreparedImage img = prepare(imageFile)) {
            return segment(img, prompt, Generation.defaults());
        }
    }

    public Segmentation segment(BufferedImage image, String prompt) {
        return segment(image, prompt, Generation.defaults());
    }

    public Segmentation segment(BufferedImage image, String prompt, Generation generation) {
        try (PreparedImage img = prepare(image)) {
            return segment(img, prompt, generation);
        }
    }

    /** Several prompts on one image: the image features are computed once. */
    public List<Segmentation> segment(PreparedImage image, List<String> prompts, Generation generation) {
        if (prompts == null || prompts.isEmpty()) {
            throw new IllegalArgumentException("prompts: empty");
        }
        List<Segmentation> out = new ArrayList<>();
        for (String p : prompts) {
            out.add(segment(image, p, generation));
        }
        return out;
    }

    /**
     * The batch API: requests in order, one at a time (one image's features on the device at a time); consecutive
     * requests on the same {@link BufferedImage} object share its features.
     */
    public List<Segmentation> segmentAll(List<Request> requests, Generation generation) {
        if (requests == null || requests.isEmpty()) {
            throw new IllegalArgumentException("requests: empty");
        }
        List<Segmentation> out = new ArrayList<>();
        PreparedImage img = null;
        BufferedImage current = null;
        try {
            for (Request r : requests) {
                if (r.image() != current) {
                    if (img != null) {
                        img.close();
                    }
                    img = null;
                    img = prepare(r.image());
                    current = r.image();
                }
                out.add(segment(img, r.prompt(), generation));
            }
        } finally {
            if (img != null) {
                img.close();
            }
        }
        return out;
    }

    /**
     * Answers {@code prompt} about a prepared image and decodes one mask per [SEG]. The prompt is the user turn; it
     * should hold {@code <image>} where the image goes (Sa2VA's evaluation: "&lt;image&gt;\n Please segment X in
     * this image."); without it, "&lt;image&gt;\n" is put in front.
     */
    public Segmentation segment(PreparedImage image, String prompt, Generation generation) {
        checkOpen();
        if (image == null || image.owner() != this) {
            throw new IllegalArgumentException("image: " + (image == null ? "null" : "prepared by another model"));
        }
        if (image.isClosed()) {
            throw new IllegalStateException("image: the PreparedImage was closed");
        }
        if (prompt == null || prompt.isBlank()) {
            throw new IllegalArgumentException("prompt: empty");
        }
        Generation gen = generation == null ? Generation.defaults() : generation;
        String user = prompt.contains(ChatTemplate.IMAGE_PLACEHOLDER) ? prompt : ChatTemplate.IMAGE_PLACEHOLDER + "\n" + prompt;
        int imageTokens = image.tiles() * cfg.tokensPerTile();
        long[] promptIds = tok.encode(template.prompt(user, imageTokens));
        long ctx = java.util.Arrays.stream(promptIds).filter(i -> i == imgContextId).count();
        if (ctx != imageTokens) {
            throw new IllegalArgumentException("prompt: holds " + ctx + " image-context tokens, expected " + imageTokens
                    + " (one <image> per prompt, and no literal <IMG_CONTEXT>)");
        }
        try (NoGradGuard g = new NoGradGuard(); Scope scope = new Scope()) {
            Tensor ids = Torch.fromLongs(promptIds, promptIds.length);
            Tensor embeds = mllm.inputsEmbeds(ids, image.imageTokens(), imgContextId);
            Answer a = gen.isForced() ? forced(embeds, gen.forcedAnswer()) : generated(embeds, gen.maxNewTokens());
            List<SegMask> masks = new ArrayList<>();
            if (a.segHidden.size(0) > 0) {
                Tensor promptEmb = mllm.seg().embed(a.segHidden);
                Sam2Output out = sam.decode(image.samFeatures(), Sam2Prompt.language(promptEmb));
                double[] iou = Torch.toDoubles(out.iou());
                long[] best = Torch.toLongs(out.bestIndex());
                double[] obj = Torch.toDoubles(out.objectScore());
                int k = (int) out.iou().size(1);
                for (int i = 0; i < best.length; i++) {
                    Tensor logits = scope.keep(out.upsampled(i, image.height(), image.width())
                            .reshape(image.height(), image.width()));
                    Tensor low = scope.keep(out.bestMask().select(0, i).select(0, 0).contiguous());
                    Tensor emb = scope.keep(promptEmb.select(0, i).clone());
                    masks.add(new SegMask(logits, low, emb, java.util.Arrays.copyOfRange(iou, i * k, i * k + k), obj[i],
                            (int) best[i], gen.threshold()));
                }
            }
            return new Segmentation(a.text, a.tokens, a.stopReason, promptIds.length, image.tiles(), masks);
        }
    }

    private record Answer(String text, long[] tokens, String stopReason, Tensor segHidden) {
    }

    /** Teacher forcing: one forward pass over prompt + answer; [SEG] rows where [SEG] is the input token. */
    private Answer forced(Tensor promptEmbeds, String answer) {
        long[] ans = tok.encode(answer);
        if (ans.length == 0) {
            throw new IllegalArgumentException("forced answer: no tokens");
        }
        return new Answer(answer, ans, "forced", segHiddenForced(promptEmbeds, ans, segId));
    }

    /** [SEG] hidden states of a forced answer {@code ans}, with {@code seg} as the [SEG] id (package: tests). */
    Tensor segHiddenForced(Tensor promptEmbeds, long[] ans, long seg) {
        long promptLen = promptEmbeds.size(1);
        Tensor ansIds = Torch.fromLongs(ans, 1, ans.length).to(device, ScalarType.Long);
        Tensor all = torch.cat(new TensorVector(promptEmbeds, mllm.llm().embed(ansIds)), 1);
        Tensor hidden = mllm.llm().forward(all, null, Probe.NONE).select(0, 0);
        long[] rows = java.util.stream.IntStream.range(0, ans.length).filter(i -> ans[i] == seg)
                .mapToLong(i -> promptLen + i).toArray();
        if (rows.length == 0) {
            return Torch.empty(dtype, device, 0, cfg.llm().hiddenSize());
        }
        return hidden.index_select(0, Torch.fromLongs(rows, rows.length).to(device, ScalarType.Long));
    }

    private Answer generated(Tensor promptEmbeds, int maxNewTokens) {
        Generator.Result r = Generator.greedy(mllm.llm(), promptEmbeds,
                new Generator.Options(maxNewTokens, stopIds, template.stopWords(), segId, false), tok::decode);
        return new Answer(tok.decode(r.tokens()), r.tokens(), r.stopReason(), r.segHidden());
    }

    /** Prompt ids (with image tokens) that {@link #segment} builds for {@code prompt} and {@code tiles} tiles. */
    public long[] promptIds(String prompt, int tiles) {
        String user = prompt.contains(ChatTemplate.IMAGE_PLACEHOLDER) ? prompt : ChatTemplate.IMAGE_PLACEHOLDER + "\n" + prompt;
        return tok.encode(template.prompt(user, tiles * cfg.tokensPerTile()));
    }

    // ---- accessors ------------------------------------------------------------------------------------------

    /** E.g. "Sa2VA-1B bf16 cuda:0". */
    public String describe() {
        return name + " " + TensorCheck.dtypeName(dtype) + " " + options.device();
    }

    public Sa2vaConfig config() {
        return cfg;
    }

    public Sa2vaMllm mllm() {
        return mllm;
    }

    public Sam2Model sam2() {
        return sam;
    }

    public TextTokenizer tokenizer() {
        return tok;
    }

    public ChatTemplate template() {
        return template;
    }

    public Options options() {
        return options;
    }

    public ScalarType dtype() {
        return dtype;
    }

    public Device device() {
        return device;
    }

    public long segTokenId() {
        return segId;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("Sa2VA model was closed");
        }
    }

    /** Frees the weights now; prepared images of this model must not be used afterwards. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (pool != null) {
            pool.shutdownNow();
        }
        mllm.close();
        sam.close();
        tok.close();
        device.close();
    }

    @Override
    public String toString() {
        return "Sa2VA[" + describe() + ", " + String.format(Locale.ROOT, "%d layers x %d", cfg.llm().numLayers(),
                cfg.llm().hiddenSize()) + ", " + tok.describe() + "]";
    }
}
