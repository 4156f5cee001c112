package dev.sa2va.lora;

import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import java.util.List;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Inference with several LoRA adapters of one base layer in one batch: row t of x uses adapter
 * {@code adapterIndex[t]} (-1: the base layer alone), unmerged. The adapters are stacked once into
 * {@code [n, r, d_in]} / {@code [n, d_out, r]} tensors in the layer's dtype; smaller ranks are zero-padded to the
 * largest, which leaves their products unchanged. Cost grows with the number of distinct adapters within each
 * 64-row tile, so batches grouped by adapter run at single-adapter speed.
 */
public final class MultiLoraLinear implements AutoCloseable {
    private final Tensor weight, bias;
    private final Tensor loraA, loraB, scales;
    private final int count, rank;

    private MultiLoraLinear(Tensor weight, Tensor bias, Tensor loraA, Tensor loraB, Tensor scales, int count, int rank) {
        this.weight = weight;
        this.bias = bias;
        this.loraA = LoraOps.retain(loraA);
        this.loraB = LoraOps.retain(loraB);
        this.scales = LoraOps.retain(scales);
        this.count = count;
        this.rank = rank;
    }

    /**
     * Stacks the adapters of {@code layers}, which must all wrap a base weight of the same shape, dtype and device
     * (the first layer's weight and bias are used). Later changes to the layers are not seen: stack again.
     */
    public static MultiLoraLinear of(List<LoraLinear> layers) {
        if (layers == null || layers.isEmpty()) {
            throw new IllegalArgumentException("layers: at least one adapter is needed");
        }
        LoraLinear first = layers.get(0);
        Tensor w = first.weight();
        int maxRank = 0;
        for (int i = 0; i < layers.size(); i++) {
            LoraLinear l = layers.get(i);
            if (l.isMerged()) {
                throw new IllegalArgumentException("layers[" + i + "]: is merged into its weight; unmerge() first");
            }
            TensorCheck.of("layers[" + i + "].weight", l.weight()).dtype(Torch.dtype(w)).shape(TensorCheck.shapeOf(w))
                    .sameDevice("layers[0].weight", w);
            maxRank = Math.max(maxRank, l.rank());
        }
        ScalarType dt = Torch.dtype(w);
        int n = layers.size();
        TensorVector as = new TensorVector(), bs = new TensorVector();
        float[] s = new float[n];
        for (int i = 0; i < n; i++) {
            LoraLinear l = layers.get(i);
            Tensor a = Torch.zeros(dt, w.device(), maxRank, l.inFeatures());
            Tensor b = Torch.zeros(dt, w.device(), l.outFeatures(), maxRank);
            a.narrow(0, 0, l.rank()).copy_(l.loraA());
            b.narrow(1, 0, l.rank()).copy_(l.loraB());
            as.push_back(a);
            bs.push_back(b);
            s[i] = (float) l.scaling();
        }
        Tensor stackedA = torch.stack(as).contiguous(), stackedB = torch.stack(bs).contiguous();
        Tensor scales = Torch.fromFloats(s, n).to(w.device(), ScalarType.Float);
        return new MultiLoraLinear(w, first.bias(), stackedA, stackedB, scales, n, maxRank);
    }

    /** y for rows of x [..., d_in] with adapter indexes (int64 or int32, x's leading shape, values in [-1, n)). */
    public Tensor forward(Tensor x, Tensor adapterIndex) {
        return LoraOps.forwardMulti(x, weight, bias, loraA, loraB, scales, adapterIndex);
    }

    public int adapters() {
        return count;
    }

    /** The common (padded) rank. */
    public int rank() {
        return rank;
    }

    @Override
    public void close() {
        LoraOps.release(loraA);
        LoraOps.release(loraB);
        LoraOps.release(scales);
    }
}
