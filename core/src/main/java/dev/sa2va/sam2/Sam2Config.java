package dev.sa2va.sam2;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.Arrays;
import java.util.Locale;

/**
 * Size of a SAM2 image path: Hiera trunk (stages, widths, heads, windows, global-attention blocks, background
 * size of the windowed position embedding), FPN / prompt-encoder / mask-decoder width and the decoder's heads and
 * MLP width. Everything else is fixed by SAM 2.0 and written here as constants (patch embedding 7/4/3, three
 * q-pool stages with stride 2, MLP ratio 4, top-down FPN levels {2, 3}, scalp 1, two two-way blocks, attention
 * downsample rate 2, 3 multimask outputs, 3-layer heads).
 *
 * <p>Presets: {@link #hieraTiny()}, {@link #hieraSmall()}, {@link #hieraBasePlus()}, {@link #hieraLarge()} (Sa2VA
 * uses SAM 2.0 {@code sam2_hiera_l}), and {@link #tinyRandom()}, the 128-pixel configuration of the committed test
 * fixtures.
 *
 * @param imageSize     side of the (square) model input, pixels; a multiple of 32
 * @param dims          channels per trunk stage (4 stages)
 * @param heads         attention heads per trunk stage
 * @param blocks        blocks per trunk stage
 * @param windows       attention window per stage (the first block of a stage uses the previous stage's window)
 * @param globalBlocks  indices (over all blocks) of blocks with global attention
 * @param posEmbedBackground height and width of the background position embedding ({@code pos_embed})
 * @param hidden        width of the FPN, prompt encoder, mask decoder and language embedding (256 in SAM2)
 * @param decoderHeads  heads of the two-way transformer
 * @param decoderMlp    hidden width of the two-way transformer's MLP
 * @param iouHidden     hidden width of the IoU head
 */
public record Sam2Config(int imageSize, int[] dims, int[] heads, int[] blocks, int[] windows, int[] globalBlocks,
                         int[] posEmbedBackground, int hidden, int decoderHeads, int decoderMlp, int iouHidden) {
    public static final int PATCH_KERNEL = 7;
    public static final int PATCH_STRIDE = 4;
    public static final int PATCH_PADDING = 3;
    public static final int Q_POOL_STAGES = 3;
    public static final int Q_STRIDE = 2;
    public static final int MLP_RATIO = 4;
    /** Stride of the image embedding the decoder works on (backbone stride). */
    public static final int BACKBONE_STRIDE = 16;
    public static final int DECODER_DEPTH = 2;
    public static final int ATTENTION_DOWNSAMPLE = 2;
    public static final int MULTIMASK_OUTPUTS = 3;
    public static final int MASK_TOKENS = MULTIMASK_OUTPUTS + 1;
    public static final int HEAD_DEPTH = 3;
    public static final double HIERA_LN_EPS = 1e-6;
    public static final double DECODER_LN_EPS = 1e-5;
    public static final double LN2D_EPS = 1e-6;
    /** {@code dynamic_multimask_via_stability} parameters (single-mask output only). */
    public static final double STABILITY_DELTA = 0.05;
    public static final double STABILITY_THRESH = 0.98;

    public Sam2Config {
        check(dims, "dims");
        check(heads, "heads");
        check(blocks, "blocks");
        check(windows, "windows");
        if (globalBlocks == null) {
            throw new IllegalArgumentException("globalBlocks: null");
        }
        if (posEmbedBackground == null || posEmbedBackground.length != 2 || posEmbedBackground[0] <= 0
                || posEmbedBackground[1] <= 0) {
            throw new IllegalArgumentException("posEmbedBackground: expected 2 positive sizes, got "
                    + Arrays.toString(posEmbedBackground));
        }
        if (imageSize <= 0 || imageSize % 32 != 0) {
            throw new IllegalArgumentException("imageSize: must be a positive multiple of 32, got " + imageSize);
        }
        for (int s = 0; s < 4; s++) {
            if (dims[s] % heads[s] != 0) {
                throw new IllegalArgumentException("dims[" + s + "] = " + dims[s] + " is not divisible by heads[" + s
                        + "] = " + heads[s]);
            }
        }
        int patches = imageSize / PATCH_STRIDE;
        if (patches % windows[0] != 0) {
            throw new IllegalArgumentException("windows[0] = " + windows[0] + " must divide the patch grid " + patches
                    + " (pos_embed_window is tiled over it)");
        }
        int total = Arrays.stream(blocks).sum();
        for (int g : globalBlocks) {
            if (g < 0 || g >= total) {
                throw new IllegalArgumentException("globalBlocks: block " + g + " outside 0.." + (total - 1));
            }
        }
        if (hidden <= 0 || hidden % 8 != 0 || (hidden / ATTENTION_DOWNSAMPLE) % decoderHeads != 0
                || hidden % decoderHeads != 0) {
            throw new IllegalArgumentException("hidden = " + hidden + " must be a multiple of 8 and of 2 * decoderHeads ("
                    + decoderHeads + ")");
        }
        if (hidden % 4 != 0 || (hidden / 2) % 2 != 0) {
            throw new IllegalArgumentException("hidden = " + hidden + " must be a multiple of 4 (sine position encoding)");
        }
        if (decoderMlp <= 0 || iouHidden <= 0) {
            throw new IllegalArgumentException("decoderMlp and iouHidden must be positive");
        }
        dims = dims.clone();
        heads = heads.clone();
        blocks = blocks.clone();
        windows = windows.clone();
        globalBlocks = globalBlocks.clone();
        posEmbedBackground = posEmbedBackground.clone();
    }

    private static void check(int[] a, String name) {
        if (a == null || a.length != 4) {
            throw new IllegalArgumentException(name + ": expected 4 stages, got " + Arrays.toString(a));
        }
        for (int v : a) {
            if (v <= 0) {
                throw new IllegalArgumentException(name + ": values must be positive, got " + Arrays.toString(a));
            }
        }
    }

    /** SAM 2.0 Hiera-T (sam2_hiera_t.yaml). */
    public static Sam2Config hieraTiny() {
        return new Sam2Config(1024, new int[] {96, 192, 384, 768}, new int[] {1, 2, 4, 8}, new int[] {1, 2, 7, 2},
                new int[] {8, 4, 14, 7}, new int[] {5, 7, 9}, new int[] {7, 7}, 256, 8, 2048, 256);
    }

    /** SAM 2.0 Hiera-S (sam2_hiera_s.yaml). */
    public static Sam2Config hieraSmall() {
        return new Sam2Config(1024, new int[] {96, 192, 384, 768}, new int[] {1, 2, 4, 8}, new int[] {1, 2, 11, 2},
                new int[] {8, 4, 14, 7}, new int[] {7, 10, 13}, new int[] {7, 7}, 256, 8, 2048, 256);
    }

    /** SAM 2.0 Hiera-B+ (sam2_hiera_b+.yaml). */
    public static Sam2Config hieraBasePlus() {
        return new Sam2Config(1024, new int[] {112, 224, 448, 896}, new int[] {2, 4, 8, 16}, new int[] {2, 3, 16, 3},
                new int[] {8, 4, 14, 7}, new int[] {12, 16, 20}, new int[] {14, 14}, 256, 8, 2048, 256);
    }

    /** SAM 2.0 Hiera-L (sam2_hiera_l.yaml), the SAM2 of every Sa2VA model. */
    public static Sam2Config hieraLarge() {
        return new Sam2Config(1024, new int[] {144, 288, 576, 1152}, new int[] {2, 4, 8, 16}, new int[] {2, 6, 36, 4},
                new int[] {8, 4, 16, 8}, new int[] {23, 33, 43}, new int[] {7, 7}, 256, 8, 2048, 256);
    }

    /**
     * The random 128-pixel configuration of the committed fixtures (core/verification/sam2/NOTES.md): it has
     * q-pooling at every stage change, padded windows (also in a q-pooled block), a global block, and hidden 32.
     */
    public static Sam2Config tinyRandom() {
        return new Sam2Config(128, new int[] {8, 16, 32, 64}, new int[] {1, 2, 4, 8}, new int[] {1, 2, 3, 2},
                new int[] {8, 4, 6, 2}, new int[] {5}, new int[] {4, 4}, 32, 4, 64, 32);
    }

    /** A preset by name: tiny-random, hiera-tiny, hiera-small, hiera-base-plus, hiera-large (also tiny, large). */
    public static Sam2Config preset(String name) {
        switch (name.toLowerCase(Locale.ROOT).replace('_', '-')) {
            case "tiny-random": case "tiny": return tinyRandom();
            case "hiera-tiny": case "hiera-t": return hieraTiny();
            case "hiera-small": case "hiera-s": return hieraSmall();
            case "hiera-base-plus": case "hiera-b+": case "base-plus": return hieraBasePlus();
            case "hiera-large": case "hiera-l": case "large": return hieraLarge();
            default: throw new IllegalArgumentException("unknown SAM2 preset '" + name
                    + "' (tiny-random, hiera-tiny, hiera-small, hiera-base-plus, hiera-large)");
        }
    }

    /**
     * The configuration written by core/verification/sam2/sam2_reference.py into the safetensors metadata
     * ({@code "config"}: image_size, dims, heads, blocks, windows, global_blocks, bkg, hidden, dec_heads, dec_mlp,
     * iou_hidden).
     */
    public static Sam2Config fromReferenceJson(String json) {
        try {
            JsonObject o = JsonParser.parseString(json).getAsJsonObject();
            return new Sam2Config(o.get("image_size").getAsInt(), ints(o, "dims"), ints(o, "heads"), ints(o, "blocks"),
                    ints(o, "windows"), ints(o, "global_blocks"), ints(o, "bkg"), o.get("hidden").getAsInt(),
                    o.get("dec_heads").getAsInt(), o.get("dec_mlp").getAsInt(), o.get("iou_hidden").getAsInt());
        } catch (RuntimeException e) {
            if (e instanceof IllegalArgumentException) {
                throw e;
            }
            throw new IllegalArgumentException("not a SAM2 reference config: " + json + " (" + e + ")", e);
        }
    }

    private static int[] ints(JsonObject o, String key) {
        var a = o.getAsJsonArray(key);
        int[] r = new int[a.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = a.get(i).getAsInt();
        }
        return r;
    }

    // records hand out their arrays; these copies keep a config immutable
    @Override
    public int[] dims() {
        return dims.clone();
    }

    @Override
    public int[] heads() {
        return heads.clone();
    }

    @Override
    public int[] blocks() {
        return blocks.clone();
    }

    @Override
    public int[] windows() {
        return windows.clone();
    }

    @Override
    public int[] globalBlocks() {
        return globalBlocks.clone();
    }

    @Override
    public int[] posEmbedBackground() {
        return posEmbedBackground.clone();
    }

    // ---- derived quantities --------------------------------------------------------------------------------

    public int totalBlocks() {
        return Arrays.stream(blocks).sum();
    }

    /** Stage of block {@code i}. */
    public int stageOf(int block) {
        int end = 0;
        for (int s = 0; s < 4; s++) {
            end += blocks[s];
            if (block < end) {
                return s;
            }
        }
        throw new IllegalArgumentException("block " + block + " outside 0.." + (totalBlocks() - 1));
    }

    /** True for the first block of its stage. */
    public boolean firstOfStage(int block) {
        int start = 0;
        for (int s = 0; s < 4; s++) {
            if (block == start) {
                return true;
            }
            start += blocks[s];
        }
        return false;
    }

    /** Input channels of block {@code i}: the previous stage's width for the first block of stages 1..3. */
    public int blockDimIn(int block) {
        int s = stageOf(block);
        return s > 0 && firstOfStage(block) ? dims[s - 1] : dims[s];
    }

    public int blockDimOut(int block) {
        return dims[stageOf(block)];
    }

    public int blockHeads(int block) {
        return heads[stageOf(block)];
    }

    /** Attention window of block {@code i} (0 = global): lags one block behind at stage changes. */
    public int blockWindow(int block) {
        for (int g : globalBlocks) {
            if (g == block) {
                return 0;
            }
        }
        int s = stageOf(block);
        return s > 0 && firstOfStage(block) ? windows[s - 1] : windows[s];
    }

    /** True when block {@code i} max-pools its queries (first block of stages 1..3). */
    public boolean blockQueryPool(int block) {
        int s = stageOf(block);
        return s > 0 && s <= Q_POOL_STAGES && firstOfStage(block);
    }

    /** Index of the last block of each stage. */
    public int[] stageEnds() {
        int[] ends = new int[4];
        int end = -1;
        for (int s = 0; s < 4; s++) {
            end += blocks[s];
            ends[s] = end;
        }
        return ends;
    }

    /** Side of the patch grid (trunk level 0). */
    public int patchGrid() {
        return imageSize / PATCH_STRIDE;
    }

    /** Side of the image embedding the decoder attends to (FPN level 2). */
    public int embeddingSize() {
        return imageSize / BACKBONE_STRIDE;
    }

    /** Side of the low-resolution masks (4x the embedding). */
    public int lowResMaskSize() {
        return 4 * embeddingSize();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Sam2Config c && imageSize == c.imageSize && Arrays.equals(dims, c.dims)
                && Arrays.equals(heads, c.heads) && Arrays.equals(blocks, c.blocks) && Arrays.equals(windows, c.windows)
                && Arrays.equals(globalBlocks, c.globalBlocks) && Arrays.equals(posEmbedBackground, c.posEmbedBackground)
                && hidden == c.hidden && decoderHeads == c.decoderHeads && decoderMlp == c.decoderMlp
                && iouHidden == c.iouHidden;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(new int[] {imageSize, Arrays.hashCode(dims), Arrays.hashCode(heads),
                Arrays.hashCode(blocks), Arrays.hashCode(windows), Arrays.hashCode(globalBlocks), hidden});
    }

    @Override
    public String toString() {
        return "Sam2Config[imageSize=" + imageSize + ", dims=" + Arrays.toString(dims) + ", heads="
                + Arrays.toString(heads) + ", blocks=" + Arrays.toString(blocks) + ", windows=" + Arrays.toString(windows)
                + ", globalBlocks=" + Arrays.toString(globalBlocks) + ", posEmbedBackground="
                + Arrays.toString(posEmbedBackground) + ", hidden=" + hidden + ", decoderHeads=" + decoderHeads
                + ", decoderMlp=" + decoderMlp + ", iouHidden=" + iouHidden + "]";
    }
}
