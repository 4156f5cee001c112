package dev.sa2va.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

/** The fused mask-statistics kernel (CPU implementation) against plain libtorch ops. */
class MaskMetricsTest {
    static final Device CPU = Devices.cpu();

    /** TP/FP/FN/TN with three libtorch reductions: the independent reference. */
    static long[] torchReference(Tensor logits, Tensor targets, double thr) {
        long n = logits.size(0);
        Tensor z = logits.to(ScalarType.Float).reshape(n, -1);
        Tensor pr = z.gt(Torch.scalar(thr));
        Tensor gt = targets.reshape(n, -1).ne(Torch.scalar(0));
        Tensor tp = pr.logical_and(gt).sum(1);
        Tensor fp = pr.logical_and(gt.logical_not()).sum(1);
        Tensor fn = pr.logical_not().logical_and(gt).sum(1);
        Tensor tn = pr.logical_not().logical_and(gt.logical_not()).sum(1);
        return Torch.toLongs(org.bytedeco.pytorch.global.torch.stack(new org.bytedeco.pytorch.TensorVector(tp, fp, fn, tn), 1));
    }

    static Tensor randomTargets(long... shape) {
        // values 0, 1 and 255: every non-zero byte is foreground
        Tensor u = Torch.rand(ScalarType.Float, CPU, shape);
        Tensor ones = u.gt(Torch.scalar(0.6)).to(ScalarType.Byte);
        Tensor big = u.gt(Torch.scalar(0.9)).to(ScalarType.Byte).mul(Torch.scalar(254L));
        return ones.add(big);
    }

    @Test
    void matchesTorchOpsOnRandomDataForEveryFloatType() {
        Torch.seed(1);
        for (ScalarType st : new ScalarType[] {ScalarType.Float, ScalarType.Half, ScalarType.BFloat16}) {
            for (long[] shape : new long[][] {{4, 64, 64}, {3, 1000}, {2, 37, 53}, {1, 1}, {6, 1, 4099}}) {
                Tensor logits = Torch.randn(ScalarType.Float, CPU, shape).mul(Torch.scalar(3)).to(st);
                Tensor targets = randomTargets(shape);
                for (double thr : new double[] {0.0, 0.7, -1.25}) {
                    long[] want = torchReference(logits, targets, thr);
                    long[] got = Torch.toLongs(MaskMetrics.confusion(logits, targets, thr));
                    assertArrayEquals(want, got, st + " " + java.util.Arrays.toString(shape) + " thr " + thr);
                }
            }
        }
    }

    @Test
    void emptyAndFullMasks() {
        long p = 1023;
        Tensor neg = Torch.full(-5, ScalarType.Float, CPU, 2, p);
        Tensor pos = Torch.full(5, ScalarType.Float, CPU, 2, p);
        Tensor none = Torch.zeros(ScalarType.Byte, CPU, 2, p);
        Tensor all = Torch.full(1, ScalarType.Byte, CPU, 2, p);
        assertArrayEquals(new long[] {0, 0, 0, p, 0, 0, 0, p}, Torch.toLongs(MaskMetrics.confusion(neg, none)));
        assertArrayEquals(new long[] {p, 0, 0, 0, p, 0, 0, 0}, Torch.toLongs(MaskMetrics.confusion(pos, all)));
        assertArrayEquals(new long[] {0, p, 0, 0, 0, p, 0, 0}, Torch.toLongs(MaskMetrics.confusion(pos, none)));
        assertArrayEquals(new long[] {0, 0, p, 0, 0, 0, p, 0}, Torch.toLongs(MaskMetrics.confusion(neg, all)));
        MaskMetrics.Scores s = MaskMetrics.scores(MaskMetrics.confusion(neg, none))[0];
        assertEquals(1.0, s.dice());   // both empty: perfect agreement
        assertEquals(1.0, s.recall());
        assertEquals(1.0, s.precision());
        MaskMetrics.Scores miss = MaskMetrics.scores(MaskMetrics.confusion(neg, all))[0];
        assertEquals(0.0, miss.dice());
        assertEquals(0.0, miss.recall());
    }

    @Test
    void scoresFollowTheirDefinitions() {
        // 4 pixels: z > 0 at {0,1}; target at {1,2}: TP=1 FP=1 FN=1 TN=1
        Tensor z = Torch.fromFloats(new float[] {1, 2, -1, -2}, 1, 4);
        Tensor y = Torch.fromBytes(new byte[] {0, 1, 1, 0}, 1, 4);
        MaskMetrics.Scores s = MaskMetrics.scores(MaskMetrics.confusion(z, y))[0];
        assertEquals(new MaskMetrics.Scores(1, 1, 1, 1), s);
        assertEquals(0.5, s.dice(), 1e-12);
        assertEquals(0.5, s.recall(), 1e-12);
        assertEquals(0.5, s.precision(), 1e-12);
        assertEquals(1.0 / 3, s.iou(), 1e-12);
        // probability threshold 0.88 = logit 1.99 -> only pixel 1 (z=2) is positive
        MaskMetrics.Scores s2 = MaskMetrics.scores(MaskMetrics.confusion(z, y, MaskMetrics.logitOf(0.88)))[0];
        assertEquals(new MaskMetrics.Scores(1, 0, 1, 2), s2);
    }

    @Test
    void nanLogitsCountAsBackground() {
        Tensor z = Torch.fromFloats(new float[] {Float.NaN, Float.NaN}, 1, 2);
        Tensor y = Torch.fromBytes(new byte[] {1, 0}, 1, 2);
        assertArrayEquals(new long[] {0, 0, 1, 1}, Torch.toLongs(MaskMetrics.confusion(z, y)));
    }

    @Test
    void badInputGivesClearErrors() {
        Tensor z = Torch.randn(ScalarType.Float, CPU, 2, 8, 8);
        Tensor y = Torch.zeros(ScalarType.Byte, CPU, 2, 8, 8);
        assertMessage(() -> MaskMetrics.confusion(z.to(ScalarType.Long), y), "logits: dtype int64 not supported");
        assertMessage(() -> MaskMetrics.confusion(z, y.to(ScalarType.Float)), "targets: dtype float32 not supported, expected uint8");
        assertMessage(() -> MaskMetrics.confusion(z, Torch.zeros(ScalarType.Byte, CPU, 2, 8, 9)), "targets: shape [2, 8, 9] does not match logits shape [2, 8, 8]");
        assertMessage(() -> MaskMetrics.confusion(z.transpose(1, 2), y), "logits: must be contiguous");
        assertMessage(() -> MaskMetrics.confusion(z, y.transpose(1, 2).contiguous().transpose(1, 2)), "targets: must be contiguous");
        assertMessage(() -> MaskMetrics.confusion(Torch.randn(ScalarType.Float, CPU, 0, 4), Torch.zeros(ScalarType.Byte, CPU, 0, 4)), "logits: is empty");
        assertMessage(() -> MaskMetrics.confusion(null, y), "logits: tensor is null");
        assertMessage(() -> MaskMetrics.confusion(z, y, Double.NaN), "logitThreshold is NaN");
        assertMessage(() -> MaskMetrics.logitOf(1.0), "probability threshold must be in (0, 1)");
    }

    static void assertMessage(org.junit.jupiter.api.function.Executable call, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(expected), "message was: " + e.getMessage());
    }
}
