package dev.sa2va.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.metrics.MaskMetrics.EmptyMode;
import dev.sa2va.metrics.MaskMetrics.Input;
import dev.sa2va.metrics.MaskMetrics.Spec;
import java.util.Arrays;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

/** MaskMetrics.evaluate (CPU kernel) against an fp64 reference written here from the definitions. */
class MaskEvaluateTest {
    static final Device CPU = Devices.cpu();

    /** Per-sample {stats[10], scores[6]} in double, straight from the definitions. */
    static double[][][] reference(float[] pred, Input kind, double thr, byte[] tgt, byte[] roi, int n, int p, int g,
                                  double[] w, double alpha, double beta, boolean nan, boolean soft) {
        double[][][] out = new double[n][][];
        for (int i = 0; i < n; i++) {
            int row = i / g;
            double tp = 0, fp = 0, fn = 0, tn = 0, spy = 0, sp = 0, sy = 0, badT = 0, badP = 0;
            for (int k = 0; k < p; k++) {
                int yv = tgt[row * p + k] & 0xff;
                badT += yv > 1 ? 1 : 0;
                boolean y = yv != 0;
                boolean in = roi == null || roi[row * p + k] != 0;
                float v = pred[i * p + k];
                boolean h;
                double s;
                switch (kind) {
                    case LOGITS -> {
                        h = v > (float) thr;
                        s = 1 / (1 + Math.exp(-(double) v));
                        badP += Float.isNaN(v) ? 1 : 0;
                    }
                    case PROBABILITIES -> {
                        h = v > (float) thr;
                        s = v;
                        badP += (v >= 0 && v <= 1) ? 0 : 1;
                    }
                    default -> {
                        h = v != 0;
                        s = h ? 1 : 0;
                        badP += v > 1 ? 1 : 0;
                    }
                }
                if (!in) {
                    continue;
                }
                tp += h && y ? 1 : 0;
                fp += h && !y ? 1 : 0;
                fn += !h && y ? 1 : 0;
                tn += !h && !y ? 1 : 0;
                sp += s;
                spy += y ? s : 0;
                sy += y ? 1 : 0;
            }
            double a = soft ? spy : tp, pfp = soft ? sp - spy : fp, pfn = soft ? sy - spy : fn;
            double[] sc = new double[6];
            sc[1] = ratio(2 * a, 2 * a + pfp + pfn, nan);
            sc[2] = ratio(a, a + pfn, nan);
            sc[3] = ratio(a, a + pfp, nan);
            sc[4] = ratio(a, a + pfp + pfn, nan);
            sc[5] = ratio(a, a + alpha * pfp + beta * pfn, nan);
            double r = 0;
            for (int m = 0; m < 5; m++) {
                if (w[m] != 0) {
                    r += w[m] * sc[1 + m];
                }
            }
            sc[0] = r;
            if (badT + badP > 0) {
                Arrays.fill(sc, Double.NaN);
            }
            out[i] = new double[][] {{tp, fp, fn, tn, spy, sp, sy, 0, badT, badP}, sc};
        }
        return out;
    }

    static double ratio(double num, double den, boolean nan) {
        return den == 0 ? (nan ? Double.NaN : 1.0) : num / den;
    }

    static void assertClose(double want, double got, double rel, String what) {
        if (Double.isNaN(want)) {
            assertTrue(Double.isNaN(got), what + ": expected NaN, got " + got);
            return;
        }
        assertTrue(Math.abs(want - got) <= rel * Math.max(1.0, Math.abs(want)),
                what + ": expected " + want + ", got " + got + " (diff " + Math.abs(want - got) + ")");
    }

    /** Checks a Result against the reference: counts exact, sums to 1e-6 relative, scores to float precision. */
    static void check(MaskMetrics.Result res, double[][][] ref, String ctx) {
        int n = ref.length;
        double[] st = Torch.toDoubles(res.stats());
        float[] sc = Torch.toFloats(res.scores());
        assertArrayEquals(new long[] {10, n}, dev.sa2va.core.TensorCheck.shapeOf(res.stats()), ctx);
        for (int i = 0; i < n; i++) {
            for (int k : new int[] {0, 1, 2, 3, 6, 8, 9}) {
                assertEquals(ref[i][0][k], st[k * n + i], 0.0, ctx + " sample " + i + " stats row " + k);
            }
            assertClose(ref[i][0][4], st[4 * n + i], 1e-6, ctx + " sample " + i + " sum p*y");
            assertClose(ref[i][0][5], st[5 * n + i], 1e-6, ctx + " sample " + i + " sum p");
            for (int k = 0; k < 6; k++) {
                assertClose(ref[i][1][k], sc[k * n + i], 2e-6, ctx + " sample " + i + " score " + k);
            }
        }
    }

    static Tensor binary(double pOne, long... shape) {
        return Torch.rand(ScalarType.Float, CPU, shape).lt(Torch.scalar(pOne)).to(ScalarType.Byte);
    }

    @Test
    void everyInputKindTargetFormRoiAndGroupMatchTheReference() {
        Torch.seed(11);
        double[] w = {1, 0.5, 0, 0.25, 0.1};
        Spec base = Spec.DEFAULT.withReward(w[0], w[1], w[2], w[3], w[4]).withTversky(0.3, 0.7);
        // pixel counts: 1, not a multiple of 8, a multiple of 8, and a larger odd size
        for (int p : new int[] {1, 13, 64, 4099}) {
            for (int g : new int[] {1, 2}) {
                int n = 4;
                Tensor tgt = binary(0.3, n / g, p);
                Tensor roi = binary(0.8, n / g, p);
                byte[] tb = Torch.toBytes(tgt), rb = Torch.toBytes(roi);
                for (Input kind : Input.values()) {
                    for (ScalarType st : kind == Input.BINARY ? new ScalarType[] {ScalarType.Byte}
                            : new ScalarType[] {ScalarType.Float, ScalarType.Half, ScalarType.BFloat16}) {
                        Tensor pred = switch (kind) {
                            case LOGITS -> Torch.randn(ScalarType.Float, CPU, n, p).mul(Torch.scalar(2.0)).to(st);
                            case PROBABILITIES -> Torch.rand(ScalarType.Float, CPU, n, p).to(st);
                            default -> binary(0.4, n, p);
                        };
                        double thr = kind == Input.PROBABILITIES ? 0.6 : kind == Input.LOGITS ? -0.3 : 0;
                        Spec spec = base.withInput(kind, thr);
                        float[] pv = Torch.toFloats(pred);
                        for (boolean packed : new boolean[] {false, true}) {
                            for (boolean useRoi : new boolean[] {false, true}) {
                                MaskTargets t = packed ? MaskTargets.of(BitMasks.pack(tgt, "t")) : MaskTargets.of(tgt);
                                if (useRoi) {
                                    t = packed ? t.roi(BitMasks.pack(roi, "roi")) : t.roi(roi);
                                }
                                t = t.group(g);
                                String ctx = kind + " " + st + " p=" + p + " g=" + g + " packed=" + packed + " roi=" + useRoi;
                                double[][][] ref = reference(pv, kind, thr, tb, useRoi ? rb : null, n, p, g, w, 0.3,
                                        0.7, false, false);
                                check(MaskMetrics.evaluate(pred, t, spec), ref, ctx);
                                if (kind == Input.BINARY && !useRoi) {
                                    check(MaskMetrics.evaluate(BitMasks.pack(pred, "pred"), t, spec), ref, ctx + " packed pred");
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void softScoresUseTheSoftSums() {
        Torch.seed(12);
        int n = 3, p = 1000;
        Tensor z = Torch.randn(ScalarType.Float, CPU, n, p).mul(Torch.scalar(3.0));
        Tensor y = binary(0.2, n, p);
        Spec spec = Spec.DEFAULT.withSoft(true).withReward(0, 1, 0, 0, 0).withTversky(0.2, 0.8);
        double[][][] ref = reference(Torch.toFloats(z), Input.LOGITS, 0, Torch.toBytes(y), null, n, p, 1,
                new double[] {0, 1, 0, 0, 0}, 0.2, 0.8, false, true);
        check(MaskMetrics.evaluate(z, MaskTargets.of(y), spec), ref, "soft");
    }

    @Test
    void emptyMasksScoreOneOrNaN() {
        int p = 37;
        // sample 0: both empty; 1: empty target, 2 false positives; 2: empty prediction, 3 misses; 3: perfect
        byte[] y = new byte[4 * p];
        float[] z = new float[4 * p];
        Arrays.fill(z, -4f);
        z[p + 1] = 4f;
        z[p + 5] = 4f;
        y[2 * p] = y[2 * p + 3] = y[2 * p + 9] = 1;
        y[3 * p + 7] = 1;
        z[3 * p + 7] = 4f;
        Tensor zt = Torch.fromFloats(z, 4, p), yt = Torch.fromBytes(y, 4, p);
        MaskMetrics.Sample[] one = MaskMetrics.evaluate(zt, MaskTargets.of(yt), Spec.DEFAULT).toHost();
        assertEquals(1f, one[0].dice());
        assertEquals(1f, one[0].recall());
        assertEquals(1f, one[0].precision());
        assertEquals(1f, one[0].iou());
        assertEquals(0f, one[1].dice());
        assertEquals(1f, one[1].recall());   // nothing to find
        assertEquals(0f, one[1].precision());
        assertEquals(0f, one[2].dice());
        assertEquals(0f, one[2].recall());
        assertEquals(1f, one[2].precision()); // nothing claimed
        assertEquals(1f, one[3].dice());
        assertEquals(new MaskMetrics.Sample(0, 0, 0, p, 0, one[0].sumP(), 0, 0, 0, 1f, 1f, 1f, 1f, 1f, 1f), one[0]);
        MaskMetrics.Sample[] nan = MaskMetrics.evaluate(zt, MaskTargets.of(yt), Spec.DEFAULT.withEmpty(EmptyMode.NAN))
                .toHost();
        assertTrue(Float.isNaN(nan[0].dice()) && Float.isNaN(nan[0].recall()) && Float.isNaN(nan[0].precision()));
        assertTrue(Float.isNaN(nan[1].recall()) && nan[1].dice() == 0f && nan[1].precision() == 0f);
        assertTrue(Float.isNaN(nan[2].precision()) && nan[2].recall() == 0f);
        assertEquals(1f, nan[3].dice());
        assertEquals(nan[0].reward(), nan[0].dice(), 0f, "reward = Dice is NaN too");
    }

    @Test
    void reusedOutputsAreOverwrittenInPlaceAndOnlyWhenTheyFit() {
        Torch.seed(14);
        Tensor z1 = Torch.randn(ScalarType.Float, CPU, 3, 50), z2 = Torch.randn(ScalarType.Float, CPU, 3, 50);
        Tensor y = binary(0.3, 3, 50);
        MaskMetrics.Result first = MaskMetrics.evaluate(z1, MaskTargets.of(y), Spec.DEFAULT);
        double[] fresh = Torch.toDoubles(MaskMetrics.evaluate(z2, MaskTargets.of(y), Spec.DEFAULT).stats());
        MaskMetrics.Result again = MaskMetrics.evaluate(z2, MaskTargets.of(y), Spec.DEFAULT, first);
        assertTrue(again == first, "fitting outputs are reused");
        assertArrayEquals(fresh, Torch.toDoubles(first.stats()));
        MaskMetrics.Result other = MaskMetrics.evaluate(Torch.randn(ScalarType.Float, CPU, 2, 50),
                MaskTargets.of(binary(0.3, 2, 50)), Spec.DEFAULT, first);
        assertTrue(other != first && other.stats().size(1) == 2, "N differs: new outputs");
        assertArrayEquals(fresh, Torch.toDoubles(first.stats()), "the unfitting reuse is left alone");
    }

    @Test
    void onePixelSamples() {
        Tensor z = Torch.fromFloats(new float[] {1, -1, 1, -1}, 4, 1);
        Tensor y = Torch.fromBytes(new byte[] {1, 1, 0, 0}, 4, 1);
        MaskMetrics.Sample[] s = MaskMetrics.evaluate(z, MaskTargets.of(y), Spec.DEFAULT).toHost();
        assertEquals(1, s[0].tp());
        assertEquals(1, s[1].fn());
        assertEquals(1, s[2].fp());
        assertEquals(1, s[3].tn());
        assertEquals(1f, s[3].dice());
    }

    @Test
    void invalidValuesPoisonOnlyTheirSampleAndAreReported() {
        int p = 20;
        Tensor y = binary(0.5, 3, p);
        byte[] yb = Torch.toBytes(y);
        yb[p + 4] = 2; // sample 1 has a non-binary target
        Tensor bad = Torch.fromBytes(yb, 3, p);
        Tensor z = Torch.randn(ScalarType.Float, CPU, 3, p);
        MaskMetrics.Result r = MaskMetrics.evaluate(z, MaskTargets.of(bad), Spec.DEFAULT);
        MaskMetrics.Sample[] s = r.toHost();
        assertEquals(1, s[1].invalidTarget());
        assertTrue(Float.isNaN(s[1].reward()) && Float.isNaN(s[1].dice()));
        assertTrue(Float.isFinite(s[0].reward()) && Float.isFinite(s[2].reward()));
        MaskMetricsTest.assertMessage(r::requireValid, "targets: sample 1 has 1 target/roi value(s) other than 0 and 1");
        // NaN logit
        float[] zf = Torch.toFloats(z);
        zf[2 * p + 3] = Float.NaN;
        MaskMetrics.Result rn = MaskMetrics.evaluate(Torch.fromFloats(zf, 3, p), MaskTargets.of(y), Spec.DEFAULT);
        assertEquals(1, rn.toHost()[2].invalidPred());
        MaskMetricsTest.assertMessage(rn::requireValid, "predictions: sample 2 has 1 invalid value(s)");
        // probability above 1
        Tensor probs = Torch.rand(ScalarType.Float, CPU, 3, p);
        float[] pf = Torch.toFloats(probs);
        pf[5] = 1.5f;
        MaskMetrics.Result rp = MaskMetrics.evaluate(Torch.fromFloats(pf, 3, p), MaskTargets.of(y),
                Spec.DEFAULT.withInput(Input.PROBABILITIES, 0.5));
        assertEquals(1, rp.toHost()[0].invalidPred());
        assertTrue(Float.isFinite(rp.toHost()[1].dice()));
        MaskMetrics.evaluate(z, MaskTargets.of(y), Spec.DEFAULT).requireValid(); // valid inputs pass
    }

    @Test
    void packAndUnpackFollowTheDocumentedBitOrder() {
        // bit i % 8 of byte i / 8, LSB first, zero padding
        byte[] m = {1, 0, 0, 1, 1, 0, 1, 0, /* */ 0, 1, 1};
        BitMasks b = BitMasks.pack(Torch.fromBytes(m, 1, 11), "m");
        assertArrayEquals(new byte[] {(byte) 0b01011001, (byte) 0b00000110}, Torch.toBytes(b.bits()));
        assertEquals(11, b.pixels());
        assertArrayEquals(m, Torch.toBytes(b.unpack()));
        Torch.seed(13);
        for (long[] shape : new long[][] {{3, 5, 7}, {2, 64}, {1, 1}, {4, 1000}}) {
            Tensor x = binary(0.5, shape);
            BitMasks bx = BitMasks.pack(x, "x");
            assertArrayEquals(shape, dev.sa2va.core.TensorCheck.shapeOf(bx.unpack()));
            assertArrayEquals(Torch.toBytes(x), Torch.toBytes(bx.unpack()), Arrays.toString(shape));
        }
        assertArrayEquals(Torch.toBytes(BitMasks.pack(Torch.fromBytes(m, 1, 11).to(ScalarType.Bool), "m").bits()),
                Torch.toBytes(b.bits()), "bool masks pack like uint8");
    }

    @Test
    void badArgumentsAreClearErrors() {
        Tensor z = Torch.randn(ScalarType.Float, CPU, 4, 8, 8);
        Tensor y = binary(0.5, 4, 8, 8);
        MaskTargets t = MaskTargets.of(y);
        MaskMetricsTest.assertMessage(() -> MaskMetrics.evaluate(z, MaskTargets.of(binary(0.5, 4, 8, 9)), Spec.DEFAULT),
                "targets: shape [4, 8, 9] does not match predictions [4, 8, 8]: expected [4, 8, 8]");
        MaskMetricsTest.assertMessage(() -> MaskMetrics.evaluate(z, t.group(3), Spec.DEFAULT),
                "group: size 3 does not divide the 4 samples");
        MaskMetricsTest.assertMessage(() -> MaskMetrics.evaluate(z, t.group(2), Spec.DEFAULT),
                "targets: shape [4, 8, 8] does not match predictions [4, 8, 8]: expected [2, 8, 8] (4 samples, group 2)");
        MaskMetricsTest.assertMessage(() -> t.group(0), "group: size must be >= 1");
        MaskMetricsTest.assertMessage(() -> MaskMetrics.evaluate(z, t, Spec.DEFAULT.withInput(Input.BINARY, 0)),
                "predictions: dtype float32 not supported, expected uint8 or bool");
        MaskMetricsTest.assertMessage(() -> MaskMetrics.evaluate(z.to(ScalarType.Long), t, Spec.DEFAULT),
                "predictions: dtype int64 not supported");
        MaskMetricsTest.assertMessage(() -> MaskTargets.of(y.to(ScalarType.Float)),
                "targets: dtype float32 not supported, expected uint8 or bool");
        MaskMetricsTest.assertMessage(() -> Spec.DEFAULT.withInput(Input.PROBABILITIES, 1.5),
                "threshold: a probability threshold must be in [0, 1]");
        MaskMetricsTest.assertMessage(() -> Spec.DEFAULT.withInput(Input.LOGITS, Double.NaN), "threshold: must be finite");
        MaskMetricsTest.assertMessage(() -> Spec.DEFAULT.withTversky(-1, 0.5), "alpha: must be finite and >= 0");
        MaskMetricsTest.assertMessage(() -> MaskMetrics.evaluate(z, t.roi(binary(0.5, 4, 64)), Spec.DEFAULT),
                "roi: shape [4, 64] does not match predictions [4, 8, 8]");
        MaskMetricsTest.assertMessage(() -> MaskMetrics.evaluate(z, MaskTargets.of(BitMasks.pack(binary(0.5, 4, 63), "t")),
                Spec.DEFAULT), "targets: BitMasks[4 x [63]] does not match predictions");
        MaskMetricsTest.assertMessage(() -> BitMasks.pack(Torch.fromBytes(new byte[] {0, 1, 2, (byte) 255}, 1, 4), "truth"),
                "truth: 2 value(s) other than 0 and 1");
        MaskMetricsTest.assertMessage(() -> MaskMetrics.evaluate(z.transpose(1, 2), t, Spec.DEFAULT),
                "predictions: must be contiguous");
    }
}
