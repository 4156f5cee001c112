package dev.sa2va.mllm;

import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import java.io.IOException;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * [SEG] → SAM2 prompt embedding. Sa2VA takes the last layer's hidden state after the final norm at the positions
 * where [SEG] is the <em>input</em> token (no shift; in generation: generated [SEG] tokens that were fed back),
 * and maps it with {@code text_hidden_fcs}: Linear(H, H) → ReLU → Linear(H, 256) (dropout 0 at inference).
 */
public final class SegTokens implements AutoCloseable {
    /** SAM2's prompt embedding width (its memory-attention d_model), fixed in Sa2VA. */
    public static final int PROMPT_DIM = 256;

    private final Nn.Linear fc1;
    private final Nn.Linear fc2;

    private SegTokens(Nn.Linear fc1, Nn.Linear fc2) {
        this.fc1 = fc1;
        this.fc2 = fc2;
    }

    static SegTokens load(WeightSource w, String p, long hidden) throws IOException {
        return new SegTokens(new Nn.Linear(w.get(p + "0.weight", hidden, hidden), w.get(p + "0.bias", hidden)),
                new Nn.Linear(w.get(p + "2.weight", PROMPT_DIM, hidden), w.get(p + "2.bias", PROMPT_DIM)));
    }

    /** Output width (256: SAM2's prompt embedding). */
    public long outFeatures() {
        return fc2.outFeatures();
    }

    /** text_hidden_fcs: {@code [..., H]} → {@code [..., 256]}. */
    public Tensor embed(Tensor segHidden) {
        Nn.checkWidth("segHidden", segHidden, fc1.inFeatures());
        try (NoGradGuard g = new NoGradGuard(); Scope s = new Scope()) {
            return s.keep(fc2.forward(torch.relu(fc1.forward(segHidden))));
        }
    }

    /**
     * Rows of {@code finalHidden [L, H]} (or {@code [1, L, H]}) where {@code inputIds [L]} equals {@code segId}, in
     * order: {@code [nSeg, H]} (possibly empty).
     */
    public static Tensor select(Tensor finalHidden, Tensor inputIds, long segId) {
        Tensor h = finalHidden.dim() == 3 && finalHidden.size(0) == 1 ? finalHidden.select(0, 0) : finalHidden;
        TensorCheck.of("finalHidden", h).dims(2);
        Tensor ids = inputIds.dim() == 2 && inputIds.size(0) == 1 ? inputIds.select(0, 0) : inputIds;
        TensorCheck.of("inputIds", ids).dtype(ScalarType.Long).dims(1);
        if (ids.size(0) != h.size(0)) {
            throw new IllegalArgumentException("inputIds: " + ids.size(0) + " tokens but finalHidden has " + h.size(0)
                    + " positions");
        }
        try (Scope s = new Scope()) {
            Tensor pos = ids.to(h.device(), ScalarType.Long).eq(Torch.scalar(segId)).nonzero().select(1, 0);
            return s.keep(h.index_select(0, pos));
        }
    }

    @Override
    public void close() {
        fc1.close();
        fc2.close();
    }
}
