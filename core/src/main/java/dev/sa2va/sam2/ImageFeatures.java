package dev.sa2va.sam2;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.bytedeco.pytorch.Tensor;

/**
 * What the image encoder computes once per image and the decoder reuses for every prompt: the image embedding
 * (FPN level 2 + {@code no_mem_embed}, (B, C, S/16, S/16)) and the high-resolution features conv_s0 (B, C/8, S/4,
 * S/4) and conv_s1 (B, C/4, S/8, S/8), in the model dtype. With {@code keepStages}, also the trunk levels (NCHW,
 * as SAM2's trunk returns them) and all four FPN levels, for verification.
 */
public final class ImageFeatures {
    private final Tensor imageEmbedding, featS0, featS1;
    private final List<Tensor> trunkLevels, fpnLevels;

    ImageFeatures(Tensor imageEmbedding, Tensor featS0, Tensor featS1, List<Tensor> trunkLevels,
                  List<Tensor> fpnLevels) {
        this.imageEmbedding = imageEmbedding;
        this.featS0 = featS0;
        this.featS1 = featS1;
        this.trunkLevels = trunkLevels == null ? List.of() : Collections.unmodifiableList(trunkLevels);
        this.fpnLevels = fpnLevels == null ? List.of() : Collections.unmodifiableList(fpnLevels);
    }

    /** Images in the batch. */
    public long batch() {
        return imageEmbedding.size(0);
    }

    public Tensor imageEmbedding() {
        return imageEmbedding;
    }

    public Tensor featS0() {
        return featS0;
    }

    public Tensor featS1() {
        return featS1;
    }

    /** Trunk outputs, NCHW, strides 4..32 (empty unless requested). */
    public List<Tensor> trunkLevels() {
        return trunkLevels;
    }

    /** FPN outputs, NCHW, strides 4..32 (empty unless requested). */
    public List<Tensor> fpnLevels() {
        return fpnLevels;
    }

    List<Tensor> tensors() {
        List<Tensor> all = new ArrayList<>(List.of(imageEmbedding, featS0, featS1));
        all.addAll(trunkLevels);
        all.addAll(fpnLevels);
        return all;
    }
}
