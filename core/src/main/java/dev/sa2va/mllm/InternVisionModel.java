package dev.sa2va.mllm;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

/**
 * InternViT (InternViT-300M-448px in Sa2VA-1B/4B/8B): embeddings, then the encoder layers up to the config's
 * {@code select_layer} (−1 = all); no final norm (Sa2VA's feature layer is the raw block output). The output
 * keeps the class token; {@link PixelShuffle} drops it.
 */
public final class InternVisionModel implements AutoCloseable {
    private final Sa2vaConfig.Vision cfg;
    private final int usedLayers;
    private final InternVisionEmbeddings embeddings;
    private final List<InternVisionEncoderLayer> layers;

    private InternVisionModel(Sa2vaConfig.Vision cfg, int usedLayers, InternVisionEmbeddings embeddings,
                              List<InternVisionEncoderLayer> layers) {
        this.cfg = cfg;
        this.usedLayers = usedLayers;
        this.embeddings = embeddings;
        this.layers = layers;
    }

    /** Loads {@code prefix}embeddings.* and {@code prefix}encoder.layers.N.* (only the layers select_layer uses). */
    static InternVisionModel load(WeightSource w, String prefix, Sa2vaConfig.Vision c, int selectLayer)
            throws IOException {
        int used = c.numLayers() + 1 + selectLayer;
        InternVisionEmbeddings e = InternVisionEmbeddings.load(w, prefix + "embeddings.", c);
        List<InternVisionEncoderLayer> ls = new ArrayList<>();
        for (int i = 0; i < used; i++) {
            ls.add(InternVisionEncoderLayer.load(w, prefix + "encoder.layers." + i + ".", c));
        }
        return new InternVisionModel(c, used, e, List.copyOf(ls));
    }

    public Sa2vaConfig.Vision config() {
        return cfg;
    }

    /**
     * {@code pixelValues [T, 3, H, W]} in the model's dtype and device → {@code [T, 1 + patches, C]} (feature
     * layer output, class token first). Probe names: "vision.embeddings", "vision.layer.N".
     */
    public Tensor forward(Tensor pixelValues, Probe probe) {
        try (NoGradGuard g = new NoGradGuard(); Scope s = new Scope()) {
            Tensor x = embeddings.forward(pixelValues);
            probe.accept("vision.embeddings", x);
            for (int i = 0; i < usedLayers; i++) {
                Tensor next = layers.get(i).forward(x);
                x.close();
                x = next;
                probe.accept("vision.layer." + i, x);
            }
            return s.keep(x);
        }
    }

    @Override
    public void close() {
        embeddings.close();
        layers.forEach(InternVisionEncoderLayer::close);
    }
}
