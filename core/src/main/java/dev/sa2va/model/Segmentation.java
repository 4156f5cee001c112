package dev.sa2va.model;

import java.util.List;

/**
 * {@link Sa2VA}'s answer to one prompt: the text (generated or forced), its token ids, and one {@link SegMask} per
 * [SEG] token that has a hidden state. The mask tensors belong to the caller's innermost {@code PointerScope} when
 * one is open (freed with it), otherwise until {@link #close()}.
 *
 * @param text         the answer, special tokens included (e.g. "Sure, [SEG].&lt;|im_end|&gt;")
 * @param answerTokens its token ids
 * @param stopReason   "token", "string", "length" (generation) or "forced"
 * @param promptTokens prompt length in tokens, image tokens included
 * @param tiles        image tiles the MLLM saw (grid + thumbnail)
 * @param masks        one per [SEG], in answer order (empty when the answer has none)
 */
public record Segmentation(String text, long[] answerTokens, String stopReason, int promptTokens, int tiles,
                           List<SegMask> masks) implements AutoCloseable {
    public Segmentation {
        answerTokens = answerTokens.clone();
        masks = List.copyOf(masks);
    }

    @Override
    public long[] answerTokens() {
        return answerTokens.clone();
    }

    /** The first mask, or IllegalStateException quoting the answer when it has no [SEG]. */
    public SegMask mask() {
        if (masks.isEmpty()) {
            throw new IllegalStateException("the answer has no [SEG] token, so there is no mask: \"" + abbreviate(text)
                    + "\"");
        }
        return masks.get(0);
    }

    static String abbreviate(String s) {
        String t = s.replace("\n", "\\n");
        return t.length() > 160 ? t.substring(0, 160) + "..." : t;
    }

    /** Frees the mask tensors now. */
    @Override
    public void close() {
        masks.forEach(SegMask::close);
    }
}
