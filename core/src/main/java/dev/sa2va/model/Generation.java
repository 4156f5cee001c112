package dev.sa2va.model;

/**
 * How {@link Sa2VA} produces the answer whose [SEG] tokens prompt SAM2.
 *
 * <ul>
 * <li>Generated (default, as Sa2VA): greedy decoding until a stop token or stop string of the chat template, or
 *     {@code maxNewTokens} (Sa2VA: 2048). The [SEG] hidden state is the final-normed state computed when a
 *     generated [SEG] is fed back; a [SEG] that ends the output has none (as in Sa2VA).</li>
 * <li>Forced answer ({@link #forced}): the given answer, e.g. "Sure, [SEG].", is appended after the prompt
 *     (teacher forcing) and the [SEG] hidden states are read from that single forward pass, at the positions where
 *     [SEG] is the input token. This equals what generation gives whenever the model would have generated that
 *     answer. Random weights practically never generate [SEG], so memory/throughput runs and numeric cross-checks
 *     with random weights use it; with a trained checkpoint it is a way to ask for a mask without letting the model
 *     decide whether to give one.</li>
 * </ul>
 *
 * @param forcedAnswer null to generate, else the assistant answer to force
 * @param maxNewTokens generation limit (ignored with a forced answer)
 * @param threshold    probability above which a pixel is foreground in {@link SegMask#binary()} (Sa2VA: 0.5)
 */
public record Generation(String forcedAnswer, int maxNewTokens, double threshold) {
    /** Sa2VA's generation limit. */
    public static final int SA2VA_MAX_NEW_TOKENS = 2048;
    /** One of Sa2VA's training answers. */
    public static final String DEFAULT_FORCED_ANSWER = "Sure, [SEG].";

    public Generation {
        if (maxNewTokens < 1) {
            throw new IllegalArgumentException("maxNewTokens must be >= 1, got " + maxNewTokens);
        }
        if (!(threshold > 0 && threshold < 1)) {
            throw new IllegalArgumentException("threshold must be inside (0, 1), got " + threshold);
        }
        if (forcedAnswer != null && forcedAnswer.isEmpty()) {
            throw new IllegalArgumentException("forcedAnswer: empty (use null to generate)");
        }
    }

    /** Generate like Sa2VA: greedy, up to 2048 tokens, threshold 0.5. */
    public static Generation defaults() {
        return new Generation(null, SA2VA_MAX_NEW_TOKENS, 0.5);
    }

    /** The answer is forced (teacher forcing), e.g. {@code forced("Sure, [SEG].")}. */
    public static Generation forced(String answer) {
        if (answer == null) {
            throw new IllegalArgumentException("forced answer: null");
        }
        return new Generation(answer, SA2VA_MAX_NEW_TOKENS, 0.5);
    }

    public Generation withMaxNewTokens(int n) {
        return new Generation(forcedAnswer, n, threshold);
    }

    public Generation withThreshold(double t) {
        return new Generation(forcedAnswer, maxNewTokens, t);
    }

    public boolean isForced() {
        return forcedAnswer != null;
    }
}
