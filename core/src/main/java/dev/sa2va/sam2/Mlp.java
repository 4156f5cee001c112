package dev.sa2va.sam2;

import org.bytedeco.pytorch.Tensor;

/** SAM's MLP ({@code layers.0 .. layers.n-1}): ReLU between layers, optional sigmoid on the output. */
final class Mlp {
    private final Tensor[] w, b;
    private final boolean sigmoid;

    Mlp(Sam2Weights weights, String prefix, int layers, boolean sigmoid) {
        this.w = new Tensor[layers];
        this.b = new Tensor[layers];
        for (int i = 0; i < layers; i++) {
            w[i] = weights.get(prefix + "layers." + i + ".weight");
            b[i] = weights.get(prefix + "layers." + i + ".bias");
        }
        this.sigmoid = sigmoid;
    }

    Tensor forward(Tensor x) {
        return Scoped.tensor(() -> {
            Tensor h = x;
            for (int i = 0; i < w.length; i++) {
                h = Nn.linear(h, w[i], b[i]);
                if (i < w.length - 1) {
                    h = Nn.relu(h);
                }
            }
            return sigmoid ? h.sigmoid() : h;
        });
    }
}
