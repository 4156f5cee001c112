package dev.sa2va.sam2;

import org.bytedeco.pytorch.Tensor;

/** SAM's MLP ({@code layers.0 .. layers.n-1}): ReLU between layers, optional sigmoid on the output. */
final class Mlp {
    private final Nn.Linear[] layers;
    private final boolean sigmoid;

    Mlp(Sam2Weights w, String prefix, int depth, boolean sigmoid) {
        this.layers = new Nn.Linear[depth];
        for (int i = 0; i < depth; i++) {
            layers[i] = new Nn.Linear(w, prefix + "layers." + i);
        }
        this.sigmoid = sigmoid;
    }

    Tensor forward(Tensor x) {
        return Scoped.tensor(() -> {
            Tensor h = x;
            for (int i = 0; i < layers.length; i++) {
                h = layers[i].apply(h);
                if (i < layers.length - 1) {
                    h = Nn.relu(h);
                }
            }
            return sigmoid ? h.sigmoid() : h;
        });
    }
}
