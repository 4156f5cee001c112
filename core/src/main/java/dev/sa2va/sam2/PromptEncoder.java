package dev.sa2va.sam2;

import dev.sa2va.core.TensorCheck;
import dev.sa2va.core.Torch;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * SAM2's prompt encoder ({@code sam_prompt_encoder}) for sparse prompts, plus Sa2VA's language prompt.
 * Points: position (+0.5, pixel centre) / imageSize, random-Fourier encoded; label −1 replaces the encoding by
 * {@code not_a_point_embed}, labels 0..3 add {@code point_embeddings[label]}. Without a box, one not-a-point token
 * is appended (SAM's padding). A box becomes its two corners (labels 2 and 3) and a not-a-point token. Sa2VA:
 * no points, so SAM pads (0, 0, −1) with another not-a-point: two not-a-point tokens, then the language embedding.
 * The dense prompt is always {@code no_mask_embed} (mask prompts are not supported; the weights of
 * {@code mask_downscaling} are skipped).
 *
 * <p>Token arithmetic runs in float32 and the result is cast to the model dtype.
 */
public final class PromptEncoder {
    private final int imageSize;
    private final int hidden;
    private final ScalarType dtype;
    private final PositionEmbeddingRandom pe;
    private final Tensor pointEmbeddings; // (4, C) float32
    private final Tensor notAPoint;       // (1, C) float32
    private final Tensor noMask;          // (1, C, 1, 1) model dtype

    PromptEncoder(Sam2Config config, Sam2Weights w) {
        String p = "sam_prompt_encoder.";
        this.imageSize = config.imageSize();
        this.hidden = config.hidden();
        this.dtype = w.dtype();
        this.pe = new PositionEmbeddingRandom(w.keep(w.get(p + "pe_layer.positional_encoding_gaussian_matrix")
                .to(ScalarType.Float)));
        this.pointEmbeddings = w.keep(Nn.cat(0, w.get(p + "point_embeddings.0.weight"),
                w.get(p + "point_embeddings.1.weight"), w.get(p + "point_embeddings.2.weight"),
                w.get(p + "point_embeddings.3.weight")).to(ScalarType.Float));
        this.notAPoint = w.keep(w.get(p + "not_a_point_embed.weight").to(ScalarType.Float).clone());
        this.noMask = w.keep(w.get(p + "no_mask_embed.weight").view(1, hidden, 1, 1));
    }

    /** The sparse prompt tokens {@code (B, T, C)} in the model dtype on {@code device}. */
    Tensor sparse(Sam2Prompt prompt, Device device) {
        return Scoped.tensor(() -> {
            Tensor tokens;
            switch (prompt.kind()) {
                case LANGUAGE: {
                    Tensor lang = prompt.language();
                    if (lang.size(1) != hidden) {
                        throw new IllegalArgumentException("language: embedding size " + lang.size(1)
                                + " does not match the SAM2 hidden size " + hidden + " (shape "
                                + TensorCheck.shapeString(lang) + ")");
                    }
                    long b = lang.size(0);
                    Tensor nap = notAPoint.to(device, ScalarType.Float).view(1, 1, hidden).expand(b, 2, hidden);
                    tokens = Nn.cat(1, nap, lang.to(device, ScalarType.Float).view(b, 1, hidden));
                    break;
                }
                case POINTS:
                    tokens = points(prompt.points(), prompt.labels(), true, device);
                    break;
                case BOX:
                    tokens = box(prompt.boxes(), device);
                    break;
                case BOX_AND_POINTS:
                    tokens = Nn.cat(1, points(prompt.points(), prompt.labels(), false, device),
                            box(prompt.boxes(), device));
                    break;
                default:
                    throw new IllegalStateException(prompt.kind().toString());
            }
            return tokens.to(dtype).contiguous();
        });
    }

    /** {@code no_mask_embed} as {@code (1, C, 1, 1)}: added to every position of the image embedding. */
    Tensor noMaskEmbedding() {
        return noMask;
    }

    /** The image-wide encoding of the decoder's embedding grid, {@code (1, C, h, w)} in the model dtype. */
    Tensor densePositionEncoding(int h, int w, Device device) {
        return Scoped.tensor(() -> pe.dense(h, w, device).to(dtype));
    }

    private Tensor points(Tensor xy, Tensor labels, boolean pad, Device device) {
        long b = xy.size(0), n = xy.size(1);
        Tensor coords = xy.to(device, ScalarType.Float).add(Nn.s(0.5)).div(Nn.s(imageSize));
        Tensor lab = labels.to(device, ScalarType.Long);
        Tensor enc = pe.encode(coords); // (B, N, C)
        Tensor nap = notAPoint.to(device, ScalarType.Float).view(1, 1, hidden);
        enc = torch.where(lab.eq(Torch.scalar(-1L)).unsqueeze(-1), nap, enc);
        Tensor add = pointEmbeddings.to(device, ScalarType.Float).index_select(0, lab.clamp_min(Torch.scalar(0L))
                .flatten()).view(b, n, hidden);
        enc = enc.add(add.mul(lab.ge(Torch.scalar(0L)).unsqueeze(-1).to(ScalarType.Float)));
        if (pad) {
            enc = Nn.cat(1, enc, nap.expand(b, 1, hidden));
        }
        return enc;
    }

    private Tensor box(Tensor boxes, Device device) {
        long b = boxes.size(0);
        Tensor corners = boxes.to(device, ScalarType.Float).reshape(b, 2, 2).add(Nn.s(0.5)).div(Nn.s(imageSize));
        Tensor enc = pe.encode(corners).add(pointEmbeddings.to(device, ScalarType.Float).narrow(0, 2, 2)
                .view(1, 2, hidden));
        return Nn.cat(1, enc, notAPoint.to(device, ScalarType.Float).view(1, 1, hidden).expand(b, 1, hidden));
    }
}
