package dev.sa2va.sam2;

import org.bytedeco.pytorch.Tensor;

/**
 * One block of the two-way transformer: token self-attention, tokens → image cross-attention, token MLP (ReLU),
 * image → tokens cross-attention, each followed by a residual and a LayerNorm (eps 1e-5). Position encodings are
 * added to queries and keys, never to values. The first block skips them in self-attention, and there the
 * attention output replaces the tokens instead of being added to them.
 */
final class TwoWayAttentionBlock {
    private final boolean skipFirstLayerPe;
    private final DecoderAttention selfAttn, tokenToImage, imageToToken;
    private final Mlp mlp;
    private final Nn.LayerNorm[] norms = new Nn.LayerNorm[4];

    TwoWayAttentionBlock(Sam2Config c, Sam2Weights w, String prefix, boolean skipFirstLayerPe) {
        this.skipFirstLayerPe = skipFirstLayerPe;
        this.selfAttn = new DecoderAttention(w, prefix + "self_attn.", c.decoderHeads());
        this.tokenToImage = new DecoderAttention(w, prefix + "cross_attn_token_to_image.", c.decoderHeads());
        this.imageToToken = new DecoderAttention(w, prefix + "cross_attn_image_to_token.", c.decoderHeads());
        this.mlp = new Mlp(w, prefix + "mlp.", 2, false);
        for (int i = 0; i < 4; i++) {
            norms[i] = new Nn.LayerNorm(w, prefix + "norm" + (i + 1), Sam2Config.DECODER_LN_EPS);
        }
    }

    /** Returns {tokens, image}: tokens (B, T, C), image (B, HW, C), with their encodings tokenPe and imagePe. */
    Tensor[] forward(Tensor tokens, Tensor image, Tensor tokenPe, Tensor imagePe) {
        Tensor q;
        if (skipFirstLayerPe) {
            q = selfAttn.forward(tokens, tokens, tokens);
        } else {
            Tensor qp = tokens.add(tokenPe);
            q = tokens.add(selfAttn.forward(qp, qp, tokens));
        }
        q = norm(0, q);
        Tensor keyPe = image.add(imagePe);
        q = norm(1, q.add(tokenToImage.forward(q.add(tokenPe), keyPe, image)));
        q = norm(2, q.add(mlp.forward(q)));
        Tensor k = norm(3, image.add(imageToToken.forward(keyPe, q.add(tokenPe), q)));
        return new Tensor[] {q, k};
    }

    private Tensor norm(int i, Tensor x) {
        return norms[i].apply(x);
    }
}
