package dev.sa2va.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Torch;
import dev.sa2va.data.SyntheticFundus;
import dev.sa2va.data.SyntheticSource;
import java.io.IOException;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

/** The Frangi baseline: its Hessian against calculus, its symmetry, and its use as a vessel segmenter. */
class FrangiVesselnessTest {
    @Test
    void hessianOfAQuadraticIsItsConstantSecondDerivatives() {
        int n = 64;
        double a = 0.3, b = -0.2, c = 0.45;
        double[] img = new double[n * n];
        for (int y = 0; y < n; y++) {
            for (int x = 0; x < n; x++) {
                double u = (x - n / 2.0) / n, v = (y - n / 2.0) / n;
                img[y * n + x] = (a * u * u + b * v * v + c * u * v) * n * n / 100.0; // d2/dx2 = 2a/100 per px^2
            }
        }
        Tensor t = Torch.fromDoubles(img, 1, 1, n, n).to(org.bytedeco.pytorch.global.torch.ScalarType.Float);
        for (double sigma : new double[] {1.0, 2.0, 3.0}) {
            Tensor[] h = FrangiVesselness.hessian(t, sigma);
            double s2 = sigma * sigma;
            int m = (int) Math.ceil(3 * sigma) + 2; // away from the reflected border
            float[] dxx = Torch.toFloats(h[0]), dyy = Torch.toFloats(h[1]), dxy = Torch.toFloats(h[2]);
            for (int y = m; y < n - m; y += 5) {
                for (int x = m; x < n - m; x += 5) {
                    int i = y * n + x;
                    assertEquals(2 * a / 100 * s2, dxx[i], 1e-3 * 2 * a / 100 * s2, "dxx sigma " + sigma);
                    assertEquals(2 * b / 100 * s2, dyy[i], 1e-3 * 2 * Math.abs(b) / 100 * s2, "dyy sigma " + sigma);
                    assertEquals(c / 100 * s2, dxy[i], 1e-3 * c / 100 * s2, "dxy sigma " + sigma);
                }
            }
        }
    }

    /** A uniform fundus-red image with a dark horizontal line of Gaussian profile. */
    static Tensor lineImage(int n, int row, double width, boolean transpose) {
        byte[] rgb = new byte[n * n * 3];
        for (int y = 0; y < n; y++) {
            for (int x = 0; x < n; x++) {
                int yy = transpose ? x : y;
                double g = 150 - 60 * Math.exp(-0.5 * (yy - row) * (yy - row) / (width * width));
                int o = 3 * (y * n + x);
                rgb[o] = (byte) 200;
                rgb[o + 1] = (byte) Math.round(g);
                rgb[o + 2] = (byte) 60;
            }
        }
        return Torch.fromBytes(rgb, n, n, 3);
    }

    @Test
    void darkLineLightsUpAndTransposingTheImageTransposesTheResponse() throws Exception {
        int n = 96;
        FrangiVesselness f = new FrangiVesselness();
        float[] v = Torch.toFloats(f.segment(new Segmenter.Input("a", "a", lineImage(n, 40, 1.5, false), "v"), 0)
                .map());
        float[] vt = Torch.toFloats(f.segment(new Segmenter.Input("b", "b", lineImage(n, 40, 1.5, true), "v"), 0)
                .map());
        for (int x = 10; x < n - 10; x++) {
            assertTrue(v[40 * n + x] > 0.5, "on the line: " + v[40 * n + x]);
            assertTrue(v[70 * n + x] < 1e-3, "far from it: " + v[70 * n + x]);
            assertTrue(v[40 * n + x] > v[43 * n + x], "peaks on the centre line");
        }
        for (int y = 0; y < n; y++) {
            for (int x = 0; x < n; x++) {
                assertEquals(v[y * n + x], vt[x * n + y], 1e-4, "transpose at " + x + "," + y);
            }
        }
    }

    @Test
    void segmentsSyntheticVesselsWellAboveChance() throws IOException {
        SyntheticSource src = new SyntheticSource(SyntheticFundus.Config.defaults().withSize(192, 192), 12, 2);
        EvaluationReport r = new Evaluator(Evaluator.Options.defaults().withProgress(null).withCalibration(true, 0.5))
                .run(src, new FrangiVesselness());
        assertEquals(2, r.evaluated());
        // vessels cover ~10% of the FOV: a useless map scores Dice ~0.2 at best (all foreground)
        assertTrue(r.dice().mean() > 0.45, "Dice " + r.dice().mean());
        assertTrue(r.calibration().bestDice().meanDice() >= r.dice().mean() - 0.01);
    }
}
