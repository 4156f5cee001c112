package dev.sa2va.mllm;

import dev.sa2va.core.TensorCheck;
import java.io.IOException;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * InternViT input embeddings: Conv2d patch embedding (kernel = stride = patch), a class token in front, and
 * learned absolute position embeddings. For another patch grid than the table's (an image size other than
 * the config's), the patch part of the table is resized bicubically (align_corners=false) in float32 and cast
 * back, as Sa2VA's {@code _get_pos_embed} does.
 */
final class InternVisionEmbeddings implements AutoCloseable {
    private final Sa2vaConfig.Vision cfg;
    private final Tensor patchWeight;
    private final TensorOptional patchBias;
    private final Tensor patchBiasTensor;
    private final Tensor classEmbedding;
    private final Tensor positionEmbedding;

    private InternVisionEmbeddings(Sa2vaConfig.Vision cfg, Tensor patchWeight, Tensor patchBias, Tensor classEmbedding,
                                   Tensor positionEmbedding) {
        this.cfg = cfg;
        this.patchWeight = Scope.pin(patchWeight);
        this.patchBiasTensor = Scope.pin(patchBias);
        this.patchBias = Scope.pin(new TensorOptional(patchBias));
        this.classEmbedding = Scope.pin(classEmbedding);
        this.positionEmbedding = Scope.pin(positionEmbedding);
    }

    static InternVisionEmbeddings load(WeightSource w, String prefix, Sa2vaConfig.Vision c) throws IOException {
        int g = c.gridSize();
        return new InternVisionEmbeddings(c,
                w.get(prefix + "patch_embedding.weight", c.hiddenSize(), 3, c.patchSize(), c.patchSize()),
                w.get(prefix + "patch_embedding.bias", c.hiddenSize()),
                w.get(prefix + "class_embedding", 1, 1, c.hiddenSize()),
                w.get(prefix + "position_embedding", 1, 1 + (long) g * g, c.hiddenSize()));
    }

    /** {@code pixelValues [T, 3, H, W]} (H, W multiples of the patch) → {@code [T, 1 + (H/p)(W/p), C]}. */
    Tensor forward(Tensor pixelValues) {
        TensorCheck.of("pixelValues", pixelValues).dims(4);
        long t = pixelValues.size(0);
        int p = cfg.patchSize();
        if (pixelValues.size(1) != 3 || pixelValues.size(2) % p != 0 || pixelValues.size(3) % p != 0) {
            throw new IllegalArgumentException("pixelValues: expected [T, 3, H, W] with H and W multiples of " + p
                    + ", got " + TensorCheck.shapeString(pixelValues));
        }
        try (Scope s = new Scope()) {
            long[] stride = {p, p};
            Tensor x = torch.conv2d(pixelValues, patchWeight, patchBias, stride, new long[] {0, 0}, new long[] {1, 1}, 1);
            long h = x.size(2), w = x.size(3), c = x.size(1);
            x = x.flatten(2, -1).transpose(1, 2);
            Tensor cls = classEmbedding.expand(new long[] {t, 1, c}, false);
            x = torch.cat(new TensorVector(cls, x), 1);
            return s.keep(x.add(positions(h, w)));
        }
    }

    private Tensor positions(long h, long w) {
        int g = cfg.gridSize();
        if (h == g && w == g) {
            return positionEmbedding;
        }
        long c = positionEmbedding.size(2);
        Tensor patch = positionEmbedding.narrow(1, 1, (long) g * g).reshape(1, g, g, c).permute(0, 3, 1, 2)
                .to(ScalarType.Float);
        Tensor resized = torch.upsample_bicubic2d(patch, new long[] {h, w}, false);
        resized = resized.reshape(1, c, h * w).permute(0, 2, 1).to(positionEmbedding.scalar_type().intern());
        return torch.cat(new TensorVector(positionEmbedding.narrow(1, 0, 1), resized), 1);
    }

    @Override
    public void close() {
        patchBias.close();
        for (Tensor x : new Tensor[] {patchWeight, patchBiasTensor, classEmbedding, positionEmbedding}) {
            x.close();
        }
    }
}
