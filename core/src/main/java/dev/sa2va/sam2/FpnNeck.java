package dev.sa2va.sam2;

import dev.sa2va.core.Torch;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * SAM2's FPN neck ({@code image_encoder.neck}): a 1×1 lateral convolution of every trunk level to the hidden
 * width, and top-down fusion (nearest 2× upsampling of the coarser result, in float32, summed) for levels 2 and 3
 * only ({@code fpn_top_down_levels = [2, 3]}); levels 0 and 1 are lateral only. {@code scalp = 1}: the
 * stride-32 level is computed but not used downstream. The sine position encodings of the levels are not needed
 * by the image path and are available from {@link PositionEmbeddingSine}.
 */
public final class FpnNeck {
    static final List<Integer> TOP_DOWN_LEVELS = Arrays.asList(2, 3);
    private final Nn.Conv[] convs = new Nn.Conv[4];

    FpnNeck(Sam2Weights w) {
        for (int n = 0; n < 4; n++) {
            convs[n] = new Nn.Conv(w, "image_encoder.neck.convs." + n + ".conv", 1, 0);
        }
    }

    /** The 4 trunk levels (NHWC) -> 4 FPN levels NCHW {@code (B, C, S/4/2^i, S/4/2^i)}, finest first. */
    List<Tensor> forward(List<Tensor> trunk) {
        Tensor[] out = new Tensor[4];
        Tensor prev = null;
        for (int i = 3; i >= 0; i--) {
            final int level = i;
            final Tensor coarser = prev;
            prev = Scoped.tensor(() -> {
                Tensor lateral = convs[3 - level].apply(trunk.get(level).permute(0, 3, 1, 2));
                if (level == 3 || !TOP_DOWN_LEVELS.contains(level)) {
                    return lateral;
                }
                Tensor up = torch.upsample_nearest2d(coarser.to(ScalarType.Float),
                        new long[] {lateral.size(2), lateral.size(3)});
                return lateral.add(up.to(Torch.dtype(lateral)));
            });
            out[i] = prev;
        }
        return new ArrayList<>(Arrays.asList(out));
    }
}
