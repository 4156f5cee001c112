package dev.sa2va.mllm;

import java.io.IOException;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * Sa2VA's {@code mlp1}: LayerNorm(4C, eps 1e-5) → Linear(4C, H) → GELU (exact) → Linear(H, H), mapping pixel-shuffled
 * vision tokens to LLM embeddings (keys mlp1.0, mlp1.1, mlp1.3).
 */
public final class MlpProjector implements AutoCloseable {
    private final Nn.LayerNorm norm;
    private final Nn.Linear fc1;
    private final Nn.Linear fc2;

    private MlpProjector(Nn.LayerNorm norm, Nn.Linear fc1, Nn.Linear fc2) {
        this.norm = norm;
        this.fc1 = fc1;
        this.fc2 = fc2;
    }

    static MlpProjector load(WeightSource w, String p, long visionHidden, long llmHidden) throws IOException {
        long in = 4 * visionHidden;
        return new MlpProjector(new Nn.LayerNorm(w.get(p + "0.weight", in), w.get(p + "0.bias", in), 1e-5),
                new Nn.Linear(w.get(p + "1.weight", llmHidden, in), w.get(p + "1.bias", llmHidden)),
                new Nn.Linear(w.get(p + "3.weight", llmHidden, llmHidden), w.get(p + "3.bias", llmHidden)));
    }

    /** {@code [T, tokens, 4C]} → {@code [T, tokens, H]}. */
    public Tensor forward(Tensor shuffled) {
        Nn.checkWidth("shuffled", shuffled, fc1.inFeatures());
        try (Scope s = new Scope()) {
            return s.keep(fc2.forward(torch.gelu(fc1.forward(norm.forward(shuffled)))));
        }
    }

    @Override
    public void close() {
        norm.close();
        fc1.close();
        fc2.close();
    }
}
