package dev.sa2va.eval;

import dev.sa2va.metrics.MaskMetrics;

/**
 * The outcome of one sample: its confusion counts when it was scored, or the stage and reason of its failure. A
 * failed sample has no scores (they are NaN here and empty in the CSV) and is left out of every mean.
 *
 * @param insideFov true when the counts cover only the field of view
 * @param attempts  segmenter calls made (more than 1 after out-of-memory retries)
 * @param level     memory level of the successful call (0 = normal)
 * @param seconds   wall time of this sample (load, segment, score)
 * @param peakCudaBytes peak bytes allocated by torch on CUDA device 0 while this sample ran; -1 without CUDA
 */
public record SampleResult(int index, String id, Stage stage, String reason, long tp, long fp, long fn, long tn,
                           boolean insideFov, int width, int height, int attempts, int level, double seconds,
                           long peakCudaBytes) {
    /** Where a sample stopped: SCORED, or the stage that failed. */
    public enum Stage {
        SCORED,
        /** the image or a mask could not be read (missing, corrupt, unsupported) */
        LOAD,
        /** image, mask and FOV differ in size */
        SIZE,
        /** out of memory at every memory level */
        OUT_OF_MEMORY,
        /** the segmenter threw */
        SEGMENTER,
        /** the segmenter's map had the wrong size, NaN values, or probabilities outside [0, 1] */
        OUTPUT
    }

    public boolean ok() {
        return stage == Stage.SCORED;
    }

    static SampleResult failed(int index, String id, Stage stage, String reason, int width, int height, int attempts,
                               double seconds) {
        return new SampleResult(index, id, stage, reason, -1, -1, -1, -1, false, width, height, attempts, -1, seconds,
                -1);
    }

    SampleResult withPeakCudaBytes(long bytes) {
        return new SampleResult(index, id, stage, reason, tp, fp, fn, tn, insideFov, width, height, attempts, level,
                seconds, bytes);
    }

    public MaskMetrics.Scores scores() {
        return new MaskMetrics.Scores(tp, fp, fn, tn);
    }

    public double dice() {
        return ok() ? scores().dice() : Double.NaN;
    }

    public double recall() {
        return ok() ? scores().recall() : Double.NaN;
    }

    public double precision() {
        return ok() ? scores().precision() : Double.NaN;
    }

    public double iou() {
        return ok() ? scores().iou() : Double.NaN;
    }

    /** TN / (TN + FP); 1 when there is no negative pixel. */
    public double specificity() {
        if (!ok()) {
            return Double.NaN;
        }
        long d = tn + fp;
        return d == 0 ? 1.0 : (double) tn / d;
    }

    /** (TP + TN) / all counted pixels. */
    public double accuracy() {
        if (!ok()) {
            return Double.NaN;
        }
        long d = tp + fp + fn + tn;
        return d == 0 ? 1.0 : (double) (tp + tn) / d;
    }
}
