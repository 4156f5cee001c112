package dev.sa2va.sam2;

import dev.sa2va.core.Devices;
import dev.sa2va.core.JavaCppDefaults;
import dev.sa2va.core.StageMarks;
import dev.sa2va.core.TensorCheck;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * SAM2's image path as Sa2VA runs it: {@link HieraTrunk} → {@link FpnNeck} → conv_s0 / conv_s1 and
 * {@code no_mem_embed} (single images have no memory) → {@link PromptEncoder} → {@link MaskDecoder} → argmax-IoU
 * selection. The image features ({@link #encode}) are computed once and reused by any number of
 * {@link #decode} calls. Inference only (no autograd graph); float32, bfloat16 or float16, CPU or CUDA.
 *
 * <pre>{@code
 * Sam2Model sam = Sam2Model.load(ckpt, Sam2Config.hieraLarge(), Sam2Weights.SA2VA_PREFIX, ScalarType.BFloat16, Devices.best());
 * Sam2Preprocessor.Prepared img = new Sam2Preprocessor(1024).fromFile(Path.of("fundus.png"));
 * ImageFeatures f = sam.encode(img.pixels());
 * Sam2Output out = sam.decode(f, Sam2Prompt.language(segEmbedding));   // (256) from text_hidden_fcs
 * Tensor logits = out.upsampled(0, img.height(), img.width());        // (1, 1, H, W), no threshold applied
 * }</pre>
 */
public final class Sam2Model implements AutoCloseable {
    static {
        JavaCppDefaults.apply(); // before any JavaCPP class initialises (see JavaCppDefaults)
    }

    private final Sam2Config config;
    private final Sam2Weights weights;
    private final HieraTrunk trunk;
    private final FpnNeck neck;
    private final PromptEncoder promptEncoder;
    private final MaskDecoder decoder;
    private final Tensor noMemEmbed;  // (1, C, 1, 1)
    private final Tensor densePe;     // (1, C, h, w)

    public Sam2Model(Sam2Weights weights) {
        this.weights = weights;
        this.config = weights.config();
        try (NoGradGuard g = new NoGradGuard()) {
            this.trunk = new HieraTrunk(config, weights);
            this.neck = new FpnNeck(weights);
            this.promptEncoder = new PromptEncoder(config, weights);
            this.decoder = new MaskDecoder(config, weights);
            this.noMemEmbed = weights.keep(weights.get("no_mem_embed").view(1, config.hidden(), 1, 1));
            int e = config.embeddingSize();
            this.densePe = weights.keep(promptEncoder.densePositionEncoding(e, e, weights.device()));
        }
    }

    /** Loads the weights ({@link Sam2Weights#load}) and builds the model. */
    public static Sam2Model load(Path checkpoint, Sam2Config config, String prefix, ScalarType dtype, Device device)
            throws IOException {
        return new Sam2Model(Sam2Weights.load(checkpoint, config, prefix, dtype, device));
    }

    /** Image features of {@code pixels} (B, 3, S, S) normalised ({@link Sam2Preprocessor}), any float dtype/device. */
    public ImageFeatures encode(Tensor pixels) {
        return encode(pixels, false);
    }

    /** As {@link #encode(Tensor)}; {@code keepStages} also keeps the trunk and FPN levels (for verification). */
    public ImageFeatures encode(Tensor pixels, boolean keepStages) {
        TensorCheck.of("pixels", pixels).dtype(TensorCheck.FLOAT_TYPES).cpuOrCuda().dims(4);
        int s = config.imageSize();
        if (pixels.size(1) != 3 || pixels.size(2) != s || pixels.size(3) != s) {
            throw new IllegalArgumentException("pixels: expected shape (B, 3, " + s + ", " + s + "), got "
                    + TensorCheck.shapeString(pixels) + " (resize with Sam2Preprocessor first)");
        }
        if (pixels.size(0) == 0) {
            throw new IllegalArgumentException("pixels: empty batch");
        }
        try (NoGradGuard g = new NoGradGuard()) {
            return Scoped.call(() -> {
                Tensor x = pixels.to(weights.device(), weights.dtype()).contiguous();
                List<Tensor> levels = trunk.forward(x);
                List<Tensor> fpn = neck.forward(levels);
                if (!keepStages) { // freed now rather than when encode returns: they would add to the peak
                    levels.forEach(Tensor::close);
                }
                StageMarks.mark("sam2.fpn");
                Tensor s0 = decoder.convS0(fpn.get(0));
                Tensor s1 = decoder.convS1(fpn.get(1));
                Tensor embed = fpn.get(2).add(noMemEmbed);
                if (!keepStages) {
                    fpn.forEach(Tensor::close);
                }
                StageMarks.mark("sam2.conv_s0_s1");
                List<Tensor> trunkOut = null, fpnOut = null;
                if (keepStages) {
                    trunkOut = new ArrayList<>();
                    for (Tensor l : levels) {
                        trunkOut.add(l.permute(0, 3, 1, 2));
                    }
                    fpnOut = fpn;
                }
                return new ImageFeatures(embed, s0, s1, trunkOut, fpnOut);
            }, ImageFeatures::tensors);
        }
    }

    /** Multimask decoding (Sa2VA's setting): 3 masks per prompt, the one with the highest predicted IoU selected. */
    public Sam2Output decode(ImageFeatures features, Sam2Prompt prompt) {
        return decode(features, prompt, true);
    }

    /**
     * Decodes {@code prompt} against {@code features}. Batches: the prompt's batch equals the features' batch, or the
     * features hold one image and every prompt of the batch is decoded against it.
     */
    public Sam2Output decode(ImageFeatures features, Sam2Prompt prompt, boolean multimask) {
        if (features == null || prompt == null) {
            throw new IllegalArgumentException((features == null ? "features" : "prompt") + ": null");
        }
        long fb = features.batch(), pb = prompt.batch();
        if (fb != pb && fb != 1) {
            throw new IllegalArgumentException("prompt: batch " + pb + " does not match the " + fb
                    + " images of the features (use one image, or one prompt per image)");
        }
        try (NoGradGuard g = new NoGradGuard()) {
            return Scoped.call(() -> {
                Device dev = weights.device();
                Tensor sparse = promptEncoder.sparse(prompt, dev);
                StageMarks.mark("sam2.prompt");
                Tensor embed = features.imageEmbedding(), s0 = features.featS0(), s1 = features.featS1();
                if (fb != pb) {
                    embed = embed.expand(pb, -1, -1, -1);
                    s0 = s0.expand(pb, -1, -1, -1);
                    s1 = s1.expand(pb, -1, -1, -1);
                }
                MaskDecoder.Raw raw = decoder.forward(embed, densePe, sparse, promptEncoder.noMaskEmbedding(), s0, s1);
                StageMarks.mark("sam2.decoder");
                Tensor[] sel = MaskDecoder.select(raw, multimask);
                Tensor masks = sel[0], iou = sel[1];
                Tensor best = iou.argmax(new LongOptional(1), false); // (B)
                long b = masks.size(0), mh = masks.size(2), mw = masks.size(3);
                Tensor bestMask = torch.gather(masks, 1, best.view(b, 1, 1, 1).expand(b, 1, mh, mw));
                Sam2Output o = new Sam2Output(masks, iou, raw.objectScore().to(ScalarType.Float), best, bestMask,
                        sparse, config.imageSize());
                StageMarks.mark("sam2.select");
                return o;
            }, Sam2Output::tensors);
        }
    }

    /** {@link #encode} then {@link #decode} (multimask). */
    public Sam2Output segment(Tensor pixels, Sam2Prompt prompt) {
        return Scoped.call(() -> decode(encode(pixels), prompt), Sam2Output::tensors);
    }

    /** The decoder's image-wide position encoding (1, C, h, w), model dtype. */
    public Tensor densePositionEncoding() {
        return densePe;
    }

    /** The FPN sine position encodings of the 4 levels (1, C, S/4/2^i, S/4/2^i), model dtype. */
    public List<Tensor> fpnPositionEncodings() {
        List<Tensor> out = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            int side = config.patchGrid() >> i;
            out.add(PositionEmbeddingSine.encode(config.hidden(), side, side, weights.dtype(), weights.device()));
        }
        return out;
    }

    /** Releases the model's native memory (weights and precomputed encodings) now; see {@link Sam2Weights#close()}. */
    @Override
    public void close() {
        weights.close();
    }

    public Sam2Config config() {
        return config;
    }

    public Sam2Weights weights() {
        return weights;
    }

    public ScalarType dtype() {
        return weights.dtype();
    }

    public Device device() {
        return weights.device();
    }

    @Override
    public String toString() {
        return "Sam2Model[" + config + ", " + TensorCheck.dtypeName(dtype()) + ", " + Devices.describe(device()) + ", "
                + weights.parameterCount() + " parameters]";
    }
}
