package dev.sa2va.sam2;

import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Tensor;

/**
 * The mask decoder's two-way transformer: {@value Sam2Config#DECODER_DEPTH} {@link TwoWayAttentionBlock}s, then
 * a final tokens → image attention with residual and LayerNorm.
 */
final class TwoWayTransformer {
    private final List<TwoWayAttentionBlock> layers = new ArrayList<>();
    private final DecoderAttention finalAttn;
    private final Nn.LayerNorm normFinal;

    TwoWayTransformer(Sam2Config c, Sam2Weights w) {
        String p = "sam_mask_decoder.transformer.";
        for (int i = 0; i < Sam2Config.DECODER_DEPTH; i++) {
            layers.add(new TwoWayAttentionBlock(c, w, p + "layers." + i + ".", i == 0));
        }
        this.finalAttn = new DecoderAttention(w, p + "final_attn_token_to_image.", c.decoderHeads());
        this.normFinal = new Nn.LayerNorm(w, p + "norm_final_attn", Sam2Config.DECODER_LN_EPS);
    }

    /**
     * tokens (B, T, C); image (B, C, h, w) and its encoding imagePe (1 or B, C, h, w). Returns {tokens (B, T, C),
     * image (B, hw, C)}.
     */
    Tensor[] forward(Tensor tokens, Tensor image, Tensor imagePe) {
        Tensor keys = image.flatten(2, 3).permute(0, 2, 1);
        Tensor keyPe = imagePe.flatten(2, 3).permute(0, 2, 1);
        Tensor queries = tokens;
        for (TwoWayAttentionBlock layer : layers) {
            Tensor q0 = queries, k0 = keys;
            Tensor[] r = Scoped.call(() -> layer.forward(q0, k0, tokens, keyPe), a -> List.of(a[0], a[1]));
            queries = r[0];
            keys = r[1];
        }
        Tensor qf = queries, kf = keys;
        Tensor out = Scoped.tensor(() -> normFinal.apply(qf.add(finalAttn.forward(qf.add(tokens), kf.add(keyPe), kf))));
        return new Tensor[] {out, keys};
    }
}
