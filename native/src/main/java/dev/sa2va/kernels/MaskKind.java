package dev.sa2va.kernels;

/**
 * How mask-like inputs are stored and the layout of the spec array, mirror of {@code native/src/main/cpp/masks/mask_pass.h}.
 */
public final class MaskKind {
    public static final int NONE = 0;
    /** uint8 0/1; other values are counted as invalid. */
    public static final int U8 = 1;
    /** uint8, non-zero = foreground. */
    public static final int U8_NONZERO = 2;
    /** 1 bit per pixel, rows of ceil(P/8) bytes, pixel i at bit i % 8 of byte i / 8. */
    public static final int PACKED = 3;
    public static final int LOGITS = 4;
    public static final int PROBS = 5;

    // spec array (MaskSpecIndex)
    public static final int SPEC_W_DICE = 0;
    public static final int SPEC_W_RECALL = 1;
    public static final int SPEC_W_PRECISION = 2;
    public static final int SPEC_W_IOU = 3;
    public static final int SPEC_W_TVERSKY = 4;
    public static final int SPEC_ALPHA = 5;
    public static final int SPEC_BETA = 6;
    public static final int SPEC_EMPTY_NAN = 7;
    public static final int SPEC_SOFT = 8;
    public static final int SPEC_L_BCE = 9;
    public static final int SPEC_L_DICE = 10;
    public static final int SPEC_L_TVERSKY = 11;
    public static final int SPEC_POS_WEIGHT = 12;
    public static final int SPEC_SMOOTH = 13;
    public static final int SPEC_L_ALPHA = 14;
    public static final int SPEC_L_BETA = 15;
    public static final int SPEC_L_GAMMA = 16;
    public static final int SPEC_LEN = 17;

    /** Rows of the outputs (StatsRow, ScoreRow, LossRow, CoefRow). */
    public static final int STATS_ROWS = 10;
    public static final int SCORE_ROWS = 6;
    public static final int POLICY_ROWS = 2;
    public static final int LOSS_ROWS = 4;
    public static final int COEF_ROWS = 3;

    private MaskKind() {
    }
}
