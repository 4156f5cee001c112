package dev.sa2va.mllm;

import dev.sa2va.core.JavaCppDefaults;
import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Sa2VA's language half: InternViT → pixel shuffle → mlp1 gives image tokens, which replace the
 * {@code <IMG_CONTEXT>} tokens of the prompt in order (tiles row-major, thumbnail last; 256 tokens per tile,
 * row-major), and the Qwen2 decoder runs on the merged embeddings; {@link SegTokens} turns [SEG] hidden states
 * into SAM2 prompt embeddings. Build it with {@link MllmWeights}. Inference only (no autograd); one dtype and
 * device for everything.
 */
public final class Sa2vaMllm implements AutoCloseable {
    static {
        JavaCppDefaults.apply(); // before any JavaCPP class initialises (see JavaCppDefaults)
    }

    private final Sa2vaConfig config;
    private final InternVisionModel vision;
    private final MlpProjector projector;
    private final Qwen2Model llm;
    private final SegTokens seg;
    private final ScalarType dtype;
    private final Device device;

    Sa2vaMllm(Sa2vaConfig config, InternVisionModel vision, MlpProjector projector, Qwen2Model llm, SegTokens seg,
              ScalarType dtype, Device device) {
        this.config = config;
        this.vision = vision;
        this.projector = projector;
        this.llm = llm;
        this.seg = seg;
        this.dtype = dtype;
        this.device = device;
    }

    public Sa2vaConfig config() {
        return config;
    }

    public InternVisionModel vision() {
        return vision;
    }

    public MlpProjector projector() {
        return projector;
    }

    public Qwen2Model llm() {
        return llm;
    }

    public SegTokens seg() {
        return seg;
    }

    public ScalarType dtype() {
        return dtype;
    }

    public Device device() {
        return device;
    }

    /**
     * Image tokens of preprocessed tiles {@code pixelValues [T, 3, S, S]} (any float dtype and device; cast here) →
     * {@code [T, tokensPerTile, H]}. Probe names: those of {@link InternVisionModel#forward}, then
     * "vision.last_hidden_state", "vision.pixel_shuffle", "vision.projector".
     */
    public Tensor imageFeatures(Tensor pixelValues, Probe probe) {
        TensorCheck.of("pixelValues", pixelValues).dims(4).dtype(TensorCheck.FLOAT_TYPES);
        int s = config.vision().imageSize();
        if (pixelValues.size(1) != 3 || pixelValues.size(2) != s || pixelValues.size(3) != s) {
            throw new IllegalArgumentException("pixelValues: expected [T, 3, " + s + ", " + s + "] tiles, got "
                    + TensorCheck.shapeString(pixelValues));
        }
        try (NoGradGuard g = new NoGradGuard(); Scope sc = new Scope()) {
            Tensor vit = vision.forward(pixelValues.to(device, dtype), probe);
            probe.accept("vision.last_hidden_state", vit);
            Tensor shuffled = PixelShuffle.apply(vit, config.psVersion());
            probe.accept("vision.pixel_shuffle", shuffled);
            Tensor features = projector.forward(shuffled);
            probe.accept("vision.projector", features);
            return sc.keep(features);
        }
    }

    /**
     * Prompt embeddings {@code [1, L, H]} for token ids {@code [L]} (or {@code [1, L]}, int64, any device): the
     * token embeddings, with the rows of {@code imgContextId} replaced in order by {@code imageFeatures} (all
     * {@code [T, n, H]} rows, flattened). {@code imageFeatures} may be null for a text-only prompt. The number of
     * context tokens must equal T·n.
     */
    public Tensor inputsEmbeds(Tensor inputIds, Tensor imageFeatures, long imgContextId) {
        Tensor ids = inputIds.dim() == 1 ? inputIds.unsqueeze(0) : inputIds;
        TensorCheck.of("inputIds", ids).dtype(ScalarType.Long).dims(2);
        if (ids.size(0) != 1) {
            throw new IllegalArgumentException("inputIds: one sequence expected, got shape " + TensorCheck.shapeString(ids));
        }
        try (NoGradGuard g = new NoGradGuard(); Scope sc = new Scope()) {
            Tensor onDevice = ids.to(device, ScalarType.Long);
            Tensor embeds = llm.embed(onDevice);
            Tensor mask = onDevice.eq(Torch.scalar(imgContextId));
            long slots = mask.sum().item().toLong();
            long h = config.llm().hiddenSize();
            long rows = imageFeatures == null ? 0 : imageFeatures.numel() / h;
            if (imageFeatures != null) {
                Nn.checkWidth("imageFeatures", imageFeatures, h);
            }
            if (slots != rows) {
                throw new IllegalArgumentException("inputIds hold " + slots + " image-context tokens (id " + imgContextId
                        + ") but imageFeatures has " + rows + " rows"
                        + (imageFeatures == null ? "" : " (shape " + TensorCheck.shapeString(imageFeatures) + ")"));
            }
            if (rows > 0) {
                embeds.masked_scatter_(mask.unsqueeze(-1), imageFeatures.reshape(rows, h).to(device, dtype));
            }
            return sc.keep(embeds);
        }
    }

    @Override
    public void close() {
        vision.close();
        projector.close();
        llm.close();
        seg.close();
    }
}
