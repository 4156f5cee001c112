package dev.sa2va.sam2;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * SAM's random-Fourier position encoding ({@code pe_layer}): a point c in [0, 1]² maps to
 * [sin(2π·(2c − 1)·G), cos(2π·(2c − 1)·G)] with the stored Gaussian matrix G (2, C/2). Used for prompt points
 * and box corners and, on the grid of pixel centres, as the image-wide ("dense") encoding of the decoder.
 * Computed in float32 whatever the model dtype (the encodings are small; bf16 arguments of up to ~20 rad would
 * lose a tenth of a radian) and cast by the caller.
 */
final class PositionEmbeddingRandom {
    private final Tensor gaussian; // (2, C/2) float32

    /** {@code gaussian}: the stored matrix in float32, owned by the caller. */
    PositionEmbeddingRandom(Tensor gaussian) {
        this.gaussian = gaussian;
    }

    /** coords (..., 2) as (x, y) in [0, 1] (any float dtype) -> (..., C) float32. */
    Tensor encode(Tensor coords01) {
        return Scoped.tensor(() -> {
            Tensor c = coords01.to(ScalarType.Float).mul(Nn.s(2)).sub(Nn.s(1));
            Tensor a = c.matmul(gaussian).mul(Nn.s(2 * Math.PI));
            return Nn.cat(-1, a.sin(), a.cos());
        });
    }

    /** The encoding of the h × w grid of pixel centres ((i + 0.5) / size), (1, C, h, w) float32. */
    Tensor dense(int h, int w, Device device) {
        return Scoped.tensor(() -> {
            float[] xy = new float[h * w * 2];
            for (int i = 0; i < h; i++) {
                for (int j = 0; j < w; j++) {
                    xy[2 * (i * w + j)] = (float) ((j + 0.5) / w);
                    xy[2 * (i * w + j) + 1] = (float) ((i + 0.5) / h);
                }
            }
            Tensor grid = dev.sa2va.core.Torch.fromFloats(xy, h, w, 2).to(device, ScalarType.Float);
            return encode(grid).permute(2, 0, 1).unsqueeze(0).contiguous();
        });
    }
}
