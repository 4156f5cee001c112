package dev.sa2va.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Torch;
import dev.sa2va.data.SyntheticFundus;
import dev.sa2va.data.SyntheticSource;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

/** The threshold sweep (fused kernel) against a plain-Java float64 reference. */
class ThresholdCalibrationTest {
    static final int H = 23, W = 31;

    /** Probabilities kept at least 0.002 away from every multiple of 0.01, so float rounding cannot move a pixel. */
    static float[] probabilities(Random r, int n) {
        float[] p = new float[n];
        for (int i = 0; i < n; i++) {
            p[i] = (float) (Math.floor(r.nextDouble() * 100) / 100 + 0.003 + 0.004 * r.nextDouble());
        }
        return p;
    }

    /** {meanDice, meanRecall, meanPrecision, meanIou, pooledDice} at threshold t, inside each fov (null = all). */
    static double[] reference(List<float[]> maps, List<byte[]> targets, List<byte[]> fovs, double t) {
        double d = 0, r = 0, p = 0, j = 0;
        long stp = 0, sfp = 0, sfn = 0;
        for (int s = 0; s < maps.size(); s++) {
            long tp = 0, fp = 0, fn = 0;
            for (int i = 0; i < maps.get(s).length; i++) {
                if (fovs.get(s) != null && fovs.get(s)[i] == 0) {
                    continue;
                }
                boolean pr = maps.get(s)[i] > t, gt = targets.get(s)[i] != 0;
                tp += pr && gt ? 1 : 0;
                fp += pr && !gt ? 1 : 0;
                fn += !pr && gt ? 1 : 0;
            }
            d += 2 * tp + fp + fn == 0 ? 1 : 2.0 * tp / (2 * tp + fp + fn);
            r += tp + fn == 0 ? 1 : (double) tp / (tp + fn);
            p += tp + fp == 0 ? 1 : (double) tp / (tp + fp);
            j += tp + fp + fn == 0 ? 1 : (double) tp / (tp + fp + fn);
            stp += tp;
            sfp += fp;
            sfn += fn;
        }
        int n = maps.size();
        return new double[] {d / n, r / n, p / n, j / n, 2.0 * stp / (2 * stp + sfp + sfn)};
    }

    @Test
    void curveMatchesFloat64ReferenceForProbabilitiesAndLogits() {
        Random rnd = new Random(4);
        List<float[]> maps = new ArrayList<>();
        List<byte[]> targets = new ArrayList<>(), fovs = new ArrayList<>();
        ThresholdCalibration probs = new ThresholdCalibration(), logits = new ThresholdCalibration();
        for (int s = 0; s < 5; s++) {
            float[] p = probabilities(rnd, H * W);
            byte[] y = new byte[H * W], f = s % 2 == 0 ? new byte[H * W] : null;
            for (int i = 0; i < y.length; i++) {
                // targets correlated with p, so the curve has an interior optimum
                y[i] = (byte) (rnd.nextDouble() < 0.15 + 0.7 * p[i] * p[i] ? 1 : 0);
                if (f != null) {
                    f[i] = (byte) (i % W > 3 ? 1 : 0);
                }
            }
            maps.add(p);
            targets.add(y);
            fovs.add(f);
            Tensor pt = Torch.fromFloats(p, H, W), yt = Torch.fromBytes(y, H, W);
            Tensor ft = f == null ? null : Torch.fromBytes(f, H, W);
            probs.add(Segmenter.Prediction.probabilities(pt), yt, ft);
            logits.add(Segmenter.Prediction.logits(torch.logit(pt.to(org.bytedeco.pytorch.global.torch.ScalarType.Double))
                    .to(org.bytedeco.pytorch.global.torch.ScalarType.Float)), yt, ft);
        }
        double w = 0.7;
        ThresholdCalibration.Result a = probs.result(w), b = logits.result(w);
        assertEquals(99, a.curve().size());
        assertEquals(5, a.samples());
        double best = -1, bestObj = -1;
        for (int i = 0; i < 99; i++) {
            ThresholdCalibration.Point pa = a.curve().get(i), pb = b.curve().get(i);
            double[] ref = reference(maps, targets, fovs, pa.threshold());
            assertEquals(ref[0], pa.meanDice(), 1e-12, "dice at " + pa.threshold());
            assertEquals(ref[1], pa.meanRecall(), 1e-12);
            assertEquals(ref[2], pa.meanPrecision(), 1e-12);
            assertEquals(ref[3], pa.meanIou(), 1e-12);
            assertEquals(ref[4], pa.pooledDice(), 1e-12);
            assertEquals(ref[0] + w * ref[1], pa.objective(), 1e-12);
            assertEquals(pa, pb, "logit maps give the same curve");
            best = Math.max(best, ref[0]);
            bestObj = Math.max(bestObj, ref[0] + w * ref[1]);
        }
        assertEquals(best, a.bestDice().meanDice(), 1e-12);
        assertEquals(bestObj, a.bestObjective().objective(), 1e-12);
        assertTrue(a.bestDice().threshold() > 0.05 && a.bestDice().threshold() < 0.95, "interior optimum");
        // weighting recall moves the optimum down (or leaves it), never up
        assertTrue(a.bestObjective().threshold() <= a.bestDice().threshold());
        assertTrue(a.bestObjective().meanRecall() >= a.bestDice().meanRecall());
    }

    @Test
    void flatOptimumPicksTheThresholdNearestHalf() {
        byte[] y = new byte[H * W];
        float[] p = new float[H * W];
        for (int i = 0; i < y.length; i++) {
            y[i] = (byte) (i % 3 == 0 ? 1 : 0);
            p[i] = i % 3 == 0 || i % 7 == 0 ? 1f : 0f; // binary map: every threshold gives the same counts
        }
        ThresholdCalibration.Result r = ThresholdCalibration.calibrate(
                List.of(Segmenter.Prediction.probabilities(Torch.fromFloats(p, H, W))),
                List.of(Torch.fromBytes(y, H, W)), null, 0.5);
        assertEquals(0.5, r.bestDice().threshold(), 1e-12);
        assertEquals(0.5, r.bestObjective().threshold(), 1e-12);
        assertEquals(r.curve().get(0).meanDice(), r.bestDice().meanDice());
    }

    @Test
    void evaluatorCalibratesOnTheMapsItScored() throws IOException {
        SyntheticSource src = new SyntheticSource(SyntheticFundus.Config.defaults().withSize(48, 48), 8, 3);
        Map<String, Tensor> truth = new HashMap<>();
        ThresholdCalibration direct = new ThresholdCalibration();
        for (int i = 0; i < 3; i++) {
            var s = src.load(i);
            truth.put(s.id(), s.mask());
            direct.add(Segmenter.Prediction.probabilities(FakeSegmenter.map(s.mask())), s.mask(), s.fov());
        }
        EvaluationReport r = new Evaluator(Evaluator.Options.defaults().withProgress(null).withCalibration(true, 0.3))
                .run(src, new FakeSegmenter(truth, 1));
        assertEquals(direct.result(0.3), r.calibration());
        // at 0.5 the calibration curve and the evaluation agree
        assertEquals(r.dice().mean(), r.calibration().at(0.5).meanDice(), 1e-12);
    }

    @Test
    void badArgumentsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new ThresholdCalibration(0.2, 0.2));
        assertThrows(IllegalArgumentException.class, () -> new ThresholdCalibration(0.0, 0.5));
        assertThrows(IllegalArgumentException.class, () -> new ThresholdCalibration(0.5, 1.0));
        ThresholdCalibration c = new ThresholdCalibration(0.3, 0.6);
        assertThrows(IllegalStateException.class, () -> c.result(0.5));
        assertThrows(IllegalArgumentException.class, () -> c.result(-1));
        Tensor p = Torch.fromFloats(new float[] {0.1f, 0.9f}, 1, 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> c.add(
                Segmenter.Prediction.probabilities(p), Torch.fromBytes(new byte[] {0, 1, 1}, 1, 3), null));
        assertTrue(e.getMessage().contains("target"), e.getMessage());
    }
}
