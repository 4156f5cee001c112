package dev.sa2va.sam2;

import dev.sa2va.core.StageMarks;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * SAM2's mask decoder ({@code sam_mask_decoder}). Output tokens [object score, IoU, 4 mask tokens] followed by
 * the sparse prompt tokens attend with the image embedding (plus the dense prompt) in the
 * {@link TwoWayTransformer}. The image side is upscaled 4× (ConvT 2×2 → + conv_s1 features → LayerNorm2d → GELU
 * → ConvT 2×2 → + conv_s0 features → GELU); each mask token, through its hypernetwork MLP, gives the weights of a
 * dot product with the upscaled features: one low-resolution mask. The IoU head (sigmoid) scores the masks, the
 * object-score head gives one logit per prompt.
 *
 * <p>Multimask output returns masks 1..3; single output uses mask 0 unless its stability score (IoU of the
 * masks thresholded at ±0.05) is below 0.98, in which case the best multimask output is used (SAM2's
 * {@code dynamic_multimask_via_stability}).
 */
final class MaskDecoder {
    private final int hidden;
    private final Tensor outputTokens; // (6, C): obj_score, iou, mask x4
    private final TwoWayTransformer transformer;
    private final Nn.ConvTranspose2x2 up0, up3;
    private final Nn.LayerNorm upNorm;
    private final Nn.Conv convS0, convS1;
    private final List<Mlp> hyper = new ArrayList<>();
    private final Mlp iouHead, objHead;

    MaskDecoder(Sam2Config c, Sam2Weights w) {
        String p = "sam_mask_decoder.";
        this.hidden = c.hidden();
        this.outputTokens = w.keep(Nn.cat(0, w.get(p + "obj_score_token.weight"), w.get(p + "iou_token.weight"),
                w.get(p + "mask_tokens.weight")));
        this.transformer = new TwoWayTransformer(c, w);
        this.up0 = new Nn.ConvTranspose2x2(w, p + "output_upscaling.0");
        this.upNorm = new Nn.LayerNorm(w, p + "output_upscaling.1", Sam2Config.LN2D_EPS);
        this.up3 = new Nn.ConvTranspose2x2(w, p + "output_upscaling.3");
        this.convS0 = new Nn.Conv(w, p + "conv_s0", 1, 0);
        this.convS1 = new Nn.Conv(w, p + "conv_s1", 1, 0);
        for (int i = 0; i < Sam2Config.MASK_TOKENS; i++) {
            hyper.add(new Mlp(w, p + "output_hypernetworks_mlps." + i + ".", Sam2Config.HEAD_DEPTH, false));
        }
        this.iouHead = new Mlp(w, p + "iou_prediction_head.", Sam2Config.HEAD_DEPTH, true);
        this.objHead = new Mlp(w, p + "pred_obj_score_head.", Sam2Config.HEAD_DEPTH, false);
    }

    /** conv_s0 of FPN level 0: the stride-4 high-resolution features. */
    Tensor convS0(Tensor fpn0) {
        return convS0.apply(fpn0);
    }

    /** conv_s1 of FPN level 1: the stride-8 high-resolution features. */
    Tensor convS1(Tensor fpn1) {
        return convS1.apply(fpn1);
    }

    /** Raw decoder outputs: masks (B, 4, 4h, 4w), iou (B, 4), object score (B, 1), all in the model dtype. */
    record Raw(Tensor masks, Tensor iou, Tensor objectScore) {
    }

    /**
     * image (B, C, h, w), imagePe (1, C, h, w), sparse (B, T, C), dense (B or 1, C, h or 1, w or 1), featS0 (B, C/8,
     * 4h, 4w), featS1 (B, C/4, 2h, 2w).
     */
    Raw forward(Tensor image, Tensor imagePe, Tensor sparse, Tensor dense, Tensor featS0, Tensor featS1) {
        return Scoped.call(() -> {
            long b = image.size(0), h = image.size(2), w = image.size(3);
            Tensor tokens = Nn.cat(1, outputTokens.unsqueeze(0).expand(b, -1, -1), sparse);
            Tensor src = image.add(dense);
            Tensor[] tr = transformer.forward(tokens, src, imagePe);
            StageMarks.mark("sam2.decoder.transformer");
            Tensor hs = tr[0];
            // the upscaling in its own scope, in place where the operand is a fresh tensor (same values as the
            // out-of-place ops): per image it holds 4 MB maps, which add up at batch 8
            Tensor up = Scoped.tensor(() -> {
                Tensor srcOut = tr[1].transpose(1, 2).reshape(b, hidden, h, w);
                Tensor u = upNorm.apply2d(up0.apply(srcOut).add_(featS1));
                torch.gelu_(u); // static in-place ops return a non-owning alias: keep using the owner
                Tensor v = up3.apply(u).add_(featS0);
                torch.gelu_(v);
                return v;
            });
            StageMarks.mark("sam2.decoder.upscale");
            Tensor[] hyperIn = new Tensor[Sam2Config.MASK_TOKENS];
            for (int i = 0; i < hyperIn.length; i++) {
                hyperIn[i] = hyper.get(i).forward(hs.select(1, 2 + i));
            }
            Tensor hyperStack = Nn.stack(1, hyperIn); // (B, 4, C/8)
            long c8 = up.size(1), uh = up.size(2), uw = up.size(3);
            Tensor masks = torch.bmm(hyperStack, up.reshape(b, c8, uh * uw)).view(b, Sam2Config.MASK_TOKENS, uh, uw);
            Tensor iou = iouHead.forward(hs.select(1, 1));
            Tensor obj = objHead.forward(hs.select(1, 0));
            return new Raw(masks, iou, obj);
        }, r -> List.of(r.masks(), r.iou(), r.objectScore()));
    }

    /** Masks and IoU of the requested output mode, float32: multimask (B, 3, ...) or single (B, 1, ...). */
    static Tensor[] select(Raw raw, boolean multimask) {
        Tensor masks = raw.masks().to(ScalarType.Float), iou = raw.iou().to(ScalarType.Float);
        if (multimask) {
            return new Tensor[] {masks.narrow(1, 1, Sam2Config.MULTIMASK_OUTPUTS),
                iou.narrow(1, 1, Sam2Config.MULTIMASK_OUTPUTS)};
        }
        Tensor multiMasks = masks.narrow(1, 1, Sam2Config.MULTIMASK_OUTPUTS);
        Tensor multiIou = iou.narrow(1, 1, Sam2Config.MULTIMASK_OUTPUTS);
        Tensor best = multiIou.argmax(new org.bytedeco.pytorch.LongOptional(1), true); // (B, 1)
        long b = masks.size(0), mh = masks.size(2), mw = masks.size(3);
        Tensor bestMask = torch.gather(multiMasks, 1, best.view(b, 1, 1, 1).expand(b, 1, mh, mw));
        Tensor bestIou = torch.gather(multiIou, 1, best);
        Tensor single = masks.narrow(1, 0, 1), singleIou = iou.narrow(1, 0, 1);
        Tensor flat = single.flatten(2, 3);
        Tensor areaI = flat.gt(Nn.s(Sam2Config.STABILITY_DELTA)).sum(new long[] {2}, false,
                new org.bytedeco.pytorch.ScalarTypeOptional(ScalarType.Float));
        Tensor areaU = flat.gt(Nn.s(-Sam2Config.STABILITY_DELTA)).sum(new long[] {2}, false,
                new org.bytedeco.pytorch.ScalarTypeOptional(ScalarType.Float));
        Tensor stability = torch.where(areaU.gt(Nn.s(0)), areaI.div(areaU), Nn.s(1.0));
        Tensor stable = stability.ge(Nn.s(Sam2Config.STABILITY_THRESH)); // (B, 1)
        Tensor outMask = torch.where(stable.view(b, 1, 1, 1), single, bestMask);
        Tensor outIou = torch.where(stable, singleIou, bestIou);
        return new Tensor[] {outMask, outIou};
    }
}
