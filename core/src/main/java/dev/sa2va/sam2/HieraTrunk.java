package dev.sa2va.sam2;

import dev.sa2va.core.StageMarks;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Hiera, SAM2's image trunk ({@code image_encoder.trunk}): patch embedding (conv 7×7, stride 4, padding 3), the
 * windowed absolute position embedding (background {@code pos_embed} resized bicubically to the patch grid, plus
 * {@code pos_embed_window} tiled over it), then the multi-scale blocks. Returns the output of the last block of
 * each stage (strides 4, 8, 16, 32).
 *
 * <p>The position embedding depends only on the weights and the image size, so it is computed once (float32,
 * then cast).
 */
public final class HieraTrunk {
    private final Sam2Config config;
    private final Nn.Conv patchEmbed;
    private final Tensor posEmbed; // (1, H, W, C0) model dtype
    private final List<MultiScaleBlock> blocks = new ArrayList<>();
    private final int[] stageEnds;

    HieraTrunk(Sam2Config c, Sam2Weights w) {
        this.config = c;
        String p = "image_encoder.trunk.";
        this.patchEmbed = new Nn.Conv(w, p + "patch_embed.proj", Sam2Config.PATCH_STRIDE, Sam2Config.PATCH_PADDING);
        int g = c.patchGrid();
        this.posEmbed = w.keep(Scoped.tensor(() -> {
            Tensor bg = torch.upsample_bicubic2d(w.get(p + "pos_embed").to(ScalarType.Float), new long[] {g, g}, false);
            Tensor win = w.get(p + "pos_embed_window").to(ScalarType.Float);
            long reps = g / c.windows()[0];
            return bg.add(win.tile(1, 1, reps, reps)).permute(0, 2, 3, 1).contiguous().to(w.dtype());
        }));
        for (int i = 0; i < c.totalBlocks(); i++) {
            blocks.add(new MultiScaleBlock(c, w, i));
        }
        this.stageEnds = c.stageEnds();
    }

    /**
     * pixels (B, 3, S, S) in the model dtype and device -> the 4 stage outputs, NHWC {@code (B, S/4/2^i, S/4/2^i,
     * dims[i])}.
     */
    List<Tensor> forward(Tensor pixels) {
        // NHWC copy of the conv output, then the position embedding added in place: two maps alive, not three
        Tensor x = Scoped.tensor(() -> patchEmbed.apply(pixels).permute(0, 2, 3, 1).contiguous().add_(posEmbed));
        StageMarks.mark("sam2.trunk.embed");
        List<Tensor> levels = new ArrayList<>();
        int stage = 0;
        boolean xIsLevel = false;
        for (int i = 0; i < blocks.size(); i++) {
            Tensor next = blocks.get(i).forward(x);
            // Block outputs live in the caller's scope: without this, all 48 of them would stay allocated until the
            // whole image encoder returns (~275 MB per 1024² image at SAM2-L), which set the peak.
            if (!xIsLevel) {
                x.close();
            }
            x = next;
            xIsLevel = i == stageEnds[stage];
            if (xIsLevel) {
                levels.add(x);
                stage++;
            }
            if (StageMarks.active()) {
                StageMarks.mark("sam2.trunk.block." + i);
            }
        }
        return levels;
    }

    Sam2Config config() {
        return config;
    }
}
