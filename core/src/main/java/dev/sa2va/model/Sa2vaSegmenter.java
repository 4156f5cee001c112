package dev.sa2va.model;

import dev.sa2va.eval.CudaMemory;
import dev.sa2va.eval.Segmenter;
import java.util.Arrays;
import java.util.Locale;
import org.bytedeco.pytorch.Tensor;

/**
 * {@link Sa2VA} as a {@link Segmenter} for the evaluation harness. Each sample's text goes into a prompt template
 * (default: Sa2VA's evaluation prompt "&lt;image&gt;\n Please segment {} in this image."); the first [SEG] mask's
 * logits at the image resolution are the prediction (the harness thresholds them, 0.5 by default as Sa2VA). An
 * answer without [SEG] fails the sample (it is not scored as an empty mask).
 *
 * <p>Memory levels are MLLM tile limits (default 12, 6, 1): after a CUDA out-of-memory error the harness frees the
 * attempt's tensors, {@link #releaseMemory()} drops the cached image features and torch's cache, and the sample is
 * retried with fewer tiles. Image features are kept while consecutive samples share an image id (several prompts
 * on one image, as in Sa2VA's annotations.json).
 */
public final class Sa2vaSegmenter implements Segmenter {
    /** Sa2VA's referring-segmentation evaluation prompt ({} = the expression). */
    public static final String SA2VA_EVAL_PROMPT = "<image>\n Please segment {} in this image.";

    private final Sa2VA model;
    private final boolean ownsModel;
    private final Generation generation;
    private final String promptTemplate;
    private final int[] tileLevels;
    private PreparedImage cached;
    private String cachedId;
    private int cachedLevel = -1;
    private long images;
    private long prompts;
    private double cpuMillis;
    private long noSeg;

    /**
     * @param model          the model (closed with this segmenter when {@code ownsModel})
     * @param generation     generated or forced answer, token limit
     * @param promptTemplate the user turn, {@code {}} replaced by the sample's text; null = {@link #SA2VA_EVAL_PROMPT}
     * @param tileLevels     tile limit per memory level, decreasing, e.g. {12, 6, 1}; null = from the model's limit
     */
    public Sa2vaSegmenter(Sa2VA model, boolean ownsModel, Generation generation, String promptTemplate,
                          int[] tileLevels) {
        if (model == null) {
            throw new IllegalArgumentException("model: null");
        }
        this.model = model;
        this.ownsModel = ownsModel;
        this.generation = generation == null ? Generation.defaults() : generation;
        this.promptTemplate = promptTemplate == null ? SA2VA_EVAL_PROMPT : promptTemplate;
        if (!this.promptTemplate.contains("{}")) {
            throw new IllegalArgumentException("promptTemplate: needs {} where the sample's text goes, got \""
                    + this.promptTemplate + "\"");
        }
        this.tileLevels = tileLevels == null ? defaultLevels(model.options().maxTiles()) : tileLevels.clone();
        if (this.tileLevels.length == 0) {
            throw new IllegalArgumentException("tileLevels: empty");
        }
        for (int i = 0; i < this.tileLevels.length; i++) {
            if (this.tileLevels[i] < 1 || this.tileLevels[i] > 12 || (i > 0 && this.tileLevels[i] >= this.tileLevels[i - 1])) {
                throw new IllegalArgumentException("tileLevels: must decrease within [1, 12], got "
                        + Arrays.toString(this.tileLevels));
            }
        }
    }

    /** max, max/2, 1 without repeats (12 → 12, 6, 1). */
    static int[] defaultLevels(int max) {
        return java.util.stream.IntStream.of(max, Math.max(1, max / 2), 1).distinct().toArray();
    }

    public Sa2VA model() {
        return model;
    }

    @Override
    public String name() {
        return "Sa2VA " + model.describe() + (generation.isForced() ? ", forced answer \"" + generation.forcedAnswer()
                + "\"" : ", generated answer (max " + generation.maxNewTokens() + " tokens)");
    }

    @Override
    public int memoryLevels() {
        return tileLevels.length;
    }

    @Override
    public String describeLevel(int level) {
        return "at most " + tileLevels[level] + " tile" + (tileLevels[level] == 1 ? "" : "s");
    }

    /** The user turn for a sample's text. */
    public String prompt(String text) {
        return promptTemplate.replace("{}", text);
    }

    @Override
    public Prediction segment(Input in, int level) {
        if (level < 0 || level >= tileLevels.length) {
            throw new IllegalArgumentException("level " + level + " outside [0, " + tileLevels.length + ")");
        }
        if (cached == null || cached.isClosed() || level != cachedLevel || !in.imageId().equals(cachedId)) {
            dropCache();
            cached = model.prepare(in.image(), tileLevels[level]);
            cachedId = in.imageId();
            cachedLevel = level;
            images++;
            cpuMillis += cached.cpuMillis();
        }
        prompts++;
        Segmentation s = model.segment(cached, prompt(in.text()), generation);
        if (s.masks().isEmpty()) {
            noSeg++;
            throw new IllegalStateException("the model's answer has no [SEG] token (" + s.stopReason() + "): \""
                    + Segmentation.abbreviate(s.text()) + "\"");
        }
        Tensor logits = s.masks().get(0).logits();
        return Prediction.logits(logits);
    }

    /** Drops the cached image features and frees torch's CUDA cache. */
    @Override
    public void releaseMemory() {
        dropCache();
        CudaMemory.releaseCachedMemory();
    }

    private void dropCache() {
        if (cached != null) {
            cached.close();
        }
        cached = null;
        cachedId = null;
        cachedLevel = -1;
    }

    /** Images prepared, prompts answered, mean CPU preprocessing per image, answers without [SEG]. */
    public String stats() {
        return String.format(Locale.ROOT, "%d images prepared, %d prompts, CPU preprocessing %.1f ms/image (on two "
                + "threads, overlapping SAM2 on the device), %d answers without [SEG]", images, prompts,
                images == 0 ? 0.0 : cpuMillis / images, noSeg);
    }

    @Override
    public void close() {
        dropCache();
        if (ownsModel) {
            model.close();
        }
    }
}
