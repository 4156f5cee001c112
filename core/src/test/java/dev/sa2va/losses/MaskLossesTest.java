package dev.sa2va.losses;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.metrics.BitMasks;
import dev.sa2va.metrics.MaskTargets;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

/** Supervised mask losses (CPU kernel): values against fp64 formulas, gradients against finite differences of them. */
class MaskLossesTest {
    static final Device CPU = Devices.cpu();

    static double softplus(double x) {
        return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
    }

    /** Per-sample {total, bce, dice, tversky} in double from the definitions. */
    static double[][] reference(double[] z, byte[] y, byte[] roi, int n, int p, int g, MaskLosses.Spec s) {
        double[][] out = new double[n][4];
        for (int i = 0; i < n; i++) {
            int row = i / g;
            double S = 0, A = 0, B = 0, bce = 0, cnt = 0;
            for (int k = 0; k < p; k++) {
                if (roi != null && roi[row * p + k] == 0) {
                    continue;
                }
                double x = z[i * p + k], pr = 1 / (1 + Math.exp(-x));
                boolean t = y[row * p + k] != 0;
                cnt++;
                A += pr;
                if (t) {
                    S += pr;
                    B += 1;
                }
                bce += t ? s.posWeight() * softplus(-x) : softplus(x);
            }
            double sm = s.smooth();
            double dice = 1 - (2 * S + sm) / (A + B + sm);
            double ti = (S + sm) / (S + s.alpha() * (A - S) + s.beta() * (B - S) + sm);
            double tv = Math.pow(Math.max(1 - ti, 0), s.gamma());
            double bm = cnt > 0 ? bce / cnt : 0;
            out[i] = new double[] {s.wBce() * bm + s.wDice() * dice + s.wTversky() * tv, bm, dice, tv};
        }
        return out;
    }

    static double meanTotal(double[] z, byte[] y, byte[] roi, int n, int p, int g, MaskLosses.Spec s) {
        double t = 0;
        for (double[] r : reference(z, y, roi, n, p, g, s)) {
            t += r[0];
        }
        return t / n;
    }

    static Tensor binary(double pOne, long... shape) {
        return Torch.rand(ScalarType.Float, CPU, shape).lt(Torch.scalar(pOne)).to(ScalarType.Byte);
    }

    static double[] toDoubles(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    @Test
    void lossesAndGradientsMatchFp64AndFiniteDifferences() {
        Torch.seed(21);
        MaskLosses.Spec[] specs = {
            MaskLosses.Spec.DEFAULT,                                                    // BCE + Dice
            MaskLosses.Spec.DEFAULT.withWeights(1, 0, 0).withPosWeight(3),              // weighted BCE alone
            MaskLosses.Spec.DEFAULT.withWeights(0, 1, 0).withSmooth(1),                 // soft Dice, large smoothing
            MaskLosses.Spec.DEFAULT.withWeights(0, 0, 1).withTversky(0.3, 0.7, 1),      // Tversky
            MaskLosses.Spec.DEFAULT.withWeights(0.5, 0.5, 2).withTversky(0.2, 0.8, 0.75), // focal Tversky mix
        };
        int n = 4, p = 23, g = 2;
        Tensor zt = Torch.randn(ScalarType.Float, CPU, n, p).mul(Torch.scalar(1.5));
        Tensor yt = binary(0.35, n / g, p);
        Tensor roi = binary(0.85, n / g, p);
        double[] z = toDoubles(Torch.toFloats(zt));
        byte[] y = Torch.toBytes(yt), rb = Torch.toBytes(roi);
        for (MaskLosses.Spec s : specs) {
            for (boolean useRoi : new boolean[] {false, true}) {
                for (boolean packed : new boolean[] {false, true}) {
                    MaskTargets t = packed ? MaskTargets.of(BitMasks.pack(yt, "y")) : MaskTargets.of(yt);
                    if (useRoi) {
                        t = t.roi(roi);
                    }
                    t = t.group(g);
                    byte[] r = useRoi ? rb : null;
                    String ctx = s + " roi=" + useRoi + " packed=" + packed;
                    MaskLosses.Result res = MaskLosses.compute(zt, t, s, true);
                    double[][] ref = reference(z, y, r, n, p, g, s);
                    float[] got = Torch.toFloats(res.losses());
                    for (int i = 0; i < n; i++) {
                        for (int k = 0; k < 4; k++) {
                            double want = ref[i][k];
                            assertEquals(want, got[k * n + i], 2e-6 * Math.max(1, Math.abs(want)), ctx + " sample " + i
                                    + " loss " + k);
                        }
                    }
                    assertEquals(meanTotal(z, y, r, n, p, g, s), res.mean().item().toDouble(), 2e-6, ctx + " mean");
                    float[] grad = Torch.toFloats(res.grad());
                    double h = 1e-5, maxAbs = 0, maxErr = 0;
                    for (int j = 0; j < n * p; j++) {
                        double keep = z[j];
                        z[j] = keep + h;
                        double up = meanTotal(z, y, r, n, p, g, s);
                        z[j] = keep - h;
                        double down = meanTotal(z, y, r, n, p, g, s);
                        z[j] = keep;
                        double fd = (up - down) / (2 * h);
                        maxAbs = Math.max(maxAbs, Math.abs(fd));
                        maxErr = Math.max(maxErr, Math.abs(fd - grad[j]));
                        if (useRoi && rb[(j / p / g) * p + j % p] == 0) {
                            assertEquals(0f, grad[j], ctx + ": no gradient outside the ROI");
                        }
                    }
                    assertTrue(maxAbs > 0, ctx);
                    assertTrue(maxErr <= 1e-4 * maxAbs, ctx + ": gradient vs finite differences, max error " + maxErr
                            + " of max " + maxAbs);
                }
            }
        }
    }

    @Test
    void halfPrecisionLogitsGiveTheSameLossesAsTheirFloatValues() {
        Torch.seed(22);
        int n = 3, p = 1000;
        Tensor y = binary(0.2, n, p);
        for (ScalarType st : new ScalarType[] {ScalarType.Half, ScalarType.BFloat16}) {
            Tensor z = Torch.randn(ScalarType.Float, CPU, n, p).to(st);
            MaskLosses.Result a = MaskLosses.compute(z, MaskTargets.of(y), MaskLosses.Spec.DEFAULT, true);
            MaskLosses.Result b = MaskLosses.compute(z.to(ScalarType.Float), MaskTargets.of(y), MaskLosses.Spec.DEFAULT,
                    true);
            assertTrue(Torch.relError(a.losses(), b.losses()) < 1e-6, st.toString());
            assertEquals(st, Torch.dtype(a.grad()));
            // the gradient is rounded to the logits' dtype
            assertTrue(Torch.relError(a.grad(), b.grad()) < (st == ScalarType.Half ? 2e-3 : 1e-2), st.toString());
        }
    }

    @Test
    void gradientIsOptionalAndInvalidTargetsGiveNaN() {
        Tensor z = Torch.randn(ScalarType.Float, CPU, 2, 10);
        byte[] yb = new byte[20];
        yb[15] = 7;
        MaskLosses.Result r = MaskLosses.compute(z, MaskTargets.of(Torch.fromBytes(yb, 2, 10)), MaskLosses.Spec.DEFAULT,
                false);
        assertNull(r.grad());
        float[] l = Torch.toFloats(r.losses());
        assertTrue(Float.isFinite(l[0]) && Float.isNaN(l[1]), "sample 1 has a target value 7");
    }

    @Test
    void badArguments() {
        Tensor z = Torch.randn(ScalarType.Float, CPU, 2, 10);
        Tensor y = binary(0.5, 2, 10);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MaskLosses.compute(z.to(ScalarType.Double), MaskTargets.of(y), MaskLosses.Spec.DEFAULT, true));
        assertTrue(e.getMessage().contains("logits: dtype float64 not supported"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> MaskLosses.Spec.DEFAULT.withPosWeight(-1));
        assertTrue(e.getMessage().contains("must be finite and >= 0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> MaskLosses.Spec.DEFAULT.withTversky(0.3, 0.7, 0));
        assertTrue(e.getMessage().contains("gamma: Tversky exponent must be > 0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> MaskLosses.compute(z, MaskTargets.of(binary(0.5, 2, 11)), MaskLosses.Spec.DEFAULT, true));
        assertTrue(e.getMessage().contains("targets: shape [2, 11] does not match logits [2, 10]"), e.getMessage());
    }
}
