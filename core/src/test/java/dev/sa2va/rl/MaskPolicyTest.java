package dev.sa2va.rl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.kernels.NativeLibrary;
import dev.sa2va.metrics.BitMasks;
import dev.sa2va.metrics.MaskMetrics;
import dev.sa2va.metrics.MaskTargets;
import java.util.Arrays;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

/** The Bernoulli mask policy (CPU kernel) against the documented Philox layout and fp64 formulas. */
class MaskPolicyTest {
    static final Device CPU = Devices.cpu();

    static double softplus(double x) {
        return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
    }

    /** The uniform number of global pixel g: word g % 4 of Philox4x32-10(counter (g/4, offset), key seed). */
    static double uniform(long seed, long offset, long g) {
        long q = g >>> 2;
        int[] out = new int[4];
        NativeLibrary.philox_block(new int[] {(int) q, (int) (q >>> 32), (int) offset, (int) (offset >>> 32)}, (int) seed,
                (int) (seed >>> 32), out);
        return (out[(int) (g & 3)] >>> 8) / 16777216.0;
    }

    static boolean bit(byte[] bits, int pitch, int n, int i) {
        return ((bits[n * pitch + i / 8] >> (i % 8)) & 1) != 0;
    }

    @Test
    void samplesFollowTheDocumentedPhiloxStreamAndAreReproducible() {
        Torch.seed(31);
        int n = 3, p = 1001; // rows start at pixel offsets that are not multiples of 4 or 8
        double tau = 0.8;
        long seed = 0x1234_5678_9abcL, offset = 7;
        Tensor z = Torch.randn(ScalarType.Float, CPU, n, p).mul(Torch.scalar(2.0));
        MaskPolicy.Sample s = MaskPolicy.sample(z, tau, seed, offset, false);
        byte[] bits = Torch.toBytes(s.masks().bits());
        float[] zf = Torch.toFloats(z);
        int pitch = (p + 7) / 8, checked = 0;
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < p; k++) {
                long g = (long) i * p + k;
                double u = uniform(seed, offset, g), pr = 1 / (1 + Math.exp(-zf[i * p + k] / tau));
                if (Math.abs(u - pr) < 1e-6) {
                    continue; // float rounding of the sigmoid may decide either way
                }
                assertEquals(u < pr, bit(bits, pitch, i, k), "sample " + i + " pixel " + k);
                checked++;
            }
            // padding bits stay zero
            assertEquals(0, (bits[i * pitch + pitch - 1] & 0xff) >> (p % 8));
        }
        assertTrue(checked > n * p - 5);
        assertArrayEquals(bits, Torch.toBytes(MaskPolicy.sample(z, tau, seed, offset, false).masks().bits()),
                "same seed and offset: same masks");
        assertFalse(Arrays.equals(bits, Torch.toBytes(MaskPolicy.sample(z, tau, seed, offset + 1, false).masks().bits())),
                "another offset: other masks");
        assertFalse(Arrays.equals(bits, Torch.toBytes(MaskPolicy.sample(z, tau, seed + 1, offset, false).masks().bits())),
                "another seed: other masks");
        // threads do not change the stream
        int threads = NativeLibrary.cpu_threads();
        try {
            NativeLibrary.set_cpu_threads(1);
            assertArrayEquals(bits, Torch.toBytes(MaskPolicy.sample(z, tau, seed, offset, false).masks().bits()));
        } finally {
            NativeLibrary.set_cpu_threads(threads);
        }
    }

    @Test
    void sampleMeansMatchSigmoidOfLogitOverTemperature() {
        double[] c = {-2.0, 0.0, 0.7, 3.0};
        int p = 200_000;
        double tau = 1.5;
        float[] z = new float[c.length * p];
        for (int i = 0; i < c.length; i++) {
            Arrays.fill(z, i * p, (i + 1) * p, (float) c[i]);
        }
        Tensor logits = Torch.fromFloats(z, c.length, p);
        float[] mean = Torch.toFloats(MaskPolicy.sample(logits, tau, 99, 0, false).masks().unpack()
                .to(ScalarType.Float).mean(new long[] {1}, false, new org.bytedeco.pytorch.ScalarTypeOptional()));
        for (int i = 0; i < c.length; i++) {
            double pr = 1 / (1 + Math.exp(-c[i] / tau));
            double sd = Math.sqrt(pr * (1 - pr) / p);
            assertTrue(Math.abs(mean[i] - pr) < 5 * sd, "logit " + c[i] + ": mean " + mean[i] + " vs p " + pr);
        }
    }

    @Test
    void logProbAndEntropyMatchFp64AndTheEvaluationPass() {
        Torch.seed(32);
        int n = 4, p = 777;
        for (ScalarType st : new ScalarType[] {ScalarType.Float, ScalarType.BFloat16}) {
            for (boolean normalize : new boolean[] {false, true}) {
                double tau = 1.3;
                Tensor z = Torch.randn(ScalarType.Float, CPU, n, p).mul(Torch.scalar(3.0)).to(st);
                MaskPolicy.Sample s = MaskPolicy.sample(z, tau, 5, 1, normalize);
                assertNull(s.scores());
                float[] zf = Torch.toFloats(z);
                byte[] bits = Torch.toBytes(s.masks().bits());
                float[] lp = Torch.toFloats(s.logProb()), ent = Torch.toFloats(s.entropy());
                for (int i = 0; i < n; i++) {
                    double rl = 0, re = 0;
                    for (int k = 0; k < p; k++) {
                        double x = zf[i * p + k] / tau, pr = 1 / (1 + Math.exp(-x));
                        rl += bit(bits, (p + 7) / 8, i, k) ? -softplus(-x) : -softplus(x);
                        re += pr * softplus(-x) + (1 - pr) * softplus(x);
                    }
                    double scale = normalize ? 1.0 / p : 1.0;
                    assertEquals(rl * scale, lp[i], 1e-5 * Math.abs(rl * scale), st + " log pi, sample " + i);
                    assertEquals(re * scale, ent[i], 1e-5 * Math.abs(re * scale), st + " entropy, sample " + i);
                }
                // the same numbers from the evaluation pass, and per pixel
                assertTrue(Torch.relError(MaskPolicy.logProb(z, s.masks(), tau, normalize), s.policy()) < 1e-6);
                Tensor perPixel = MaskPolicy.logProbPerPixel(z, s.masks(), tau);
                assertArrayEquals(new long[] {n, p}, dev.sa2va.core.TensorCheck.shapeOf(perPixel));
                Tensor sums = perPixel.to(ScalarType.Double).sum(new long[] {1}, false,
                        new org.bytedeco.pytorch.ScalarTypeOptional());
                if (normalize) {
                    sums = sums.div(Torch.scalar((double) p));
                }
                assertTrue(Torch.relError(sums, s.logProb()) < 1e-5);
            }
        }
    }

    @Test
    void sampleAndScoreEqualsScoringTheSampledMasks() {
        Torch.seed(33);
        int g = 4, images = 2, p = 300;
        Tensor z = Torch.randn(ScalarType.Float, CPU, g * images, 20, 15);
        Tensor y = Torch.rand(ScalarType.Float, CPU, images, 20, 15).lt(Torch.scalar(0.3)).to(ScalarType.Byte);
        Tensor roi = Torch.rand(ScalarType.Float, CPU, images, 20, 15).lt(Torch.scalar(0.9)).to(ScalarType.Byte);
        MaskMetrics.Spec spec = MaskMetrics.Spec.DEFAULT.withReward(1, 0.5, 0, 0, 0);
        for (MaskTargets t : new MaskTargets[] {MaskTargets.of(y).roi(roi).group(g),
            MaskTargets.of(BitMasks.pack(y, "y")).roi(BitMasks.pack(roi, "roi")).group(g)}) {
            MaskPolicy.Sample s = MaskPolicy.sample(z, 1.0, 3, 4, true, t, spec);
            MaskMetrics.Result direct = MaskMetrics.evaluate(s.masks(), t, spec);
            assertArrayEquals(Torch.toDoubles(direct.stats()), Torch.toDoubles(s.scores().stats()));
            assertArrayEquals(Torch.toFloats(direct.scores()), Torch.toFloats(s.scores().scores()));
            // G samples of one image differ: the point of a stochastic policy
            float[] r = Torch.toFloats(s.scores().reward());
            assertTrue(r[0] != r[1] || r[1] != r[2] || r[2] != r[3], Arrays.toString(r));
        }
        assertEquals(p, new BitMasks(Torch.zeros(ScalarType.Byte, CPU, 1, (p + 7) / 8), new long[] {20, 15}).pixels());
    }

    @Test
    void theReadmeGrpoStepGivesNonZeroAdvantagesAndGradients() {
        Torch.seed(35);
        int g = 8;
        Tensor image = Torch.randn(ScalarType.Float, CPU, 2, 1, 32, 32);
        Tensor logits = image.expand(new long[] {2, g, 32, 32}).contiguous().reshape(2 * g, 32, 32);
        Tensor targets = image.gt(Torch.scalar(0.5)).to(ScalarType.Byte).reshape(2, 32, 32);
        Tensor fov = Torch.full(1, ScalarType.Byte, CPU, 2, 32, 32);
        long seed = 42, step = 0;
        // as in README.md
        MaskTargets truth = MaskTargets.of(BitMasks.pack(targets, "targets")).roi(fov).group(8);
        MaskPolicy.Sample s = MaskPolicy.sample(logits, 1.0, seed, step, true, truth,
                MaskMetrics.Spec.DEFAULT.withReward(1, 0.5, 0, 0, 0));
        Tensor adv = GroupAdvantages.grpo(s.scores().reward(), 8).advantages();
        Tensor dz = MaskPolicy.gradient(logits, s.masks(), 1.0, true, adv.neg(), -0.01);
        float[] a = Torch.toFloats(adv);
        double absSum = 0;
        for (float x : a) {
            assertTrue(Float.isFinite(x));
            absSum += Math.abs(x);
        }
        assertTrue(absSum > 1, "sampled masks of one image differ, so the group advantages are not all zero");
        assertTrue(Torch.toFloats(dz.abs().max())[0] > 0);
        // a thresholded (deterministic) mask gives every sample of a group the same reward: zero advantage
        MaskMetrics.Result det = MaskMetrics.evaluate(logits, truth, MaskMetrics.Spec.DEFAULT.withReward(1, 0.5, 0, 0, 0));
        for (float x : Torch.toFloats(GroupAdvantages.grpo(det.reward(), 8).advantages())) {
            assertEquals(0f, x);
        }
    }

    /** F = sum g log pi + h sum H in fp64, the function whose gradient the kernel computes. */
    static double objective(double[] z, byte[] bits, int n, int p, double tau, double[] g, boolean perPixel, double h,
                            boolean normalize) {
        double f = 0;
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < p; k++) {
                double x = z[i * p + k] / tau, pr = 1 / (1 + Math.exp(-x));
                double lp = bit(bits, (p + 7) / 8, i, k) ? -softplus(-x) : -softplus(x);
                double ent = pr * softplus(-x) + (1 - pr) * softplus(x);
                double gi = perPixel ? g[i * p + k] : g[i];
                f += (gi * lp + h * ent) / (normalize ? p : 1);
            }
        }
        return f;
    }

    @Test
    void gradientMatchesFiniteDifferences() {
        Torch.seed(34);
        int n = 3, p = 17;
        double tau = 0.7;
        Tensor zt = Torch.randn(ScalarType.Float, CPU, n, p).mul(Torch.scalar(2.0));
        MaskPolicy.Sample s = MaskPolicy.sample(zt, tau, 11, 0, false);
        byte[] bits = Torch.toBytes(s.masks().bits());
        float[] zf = Torch.toFloats(zt);
        double[] z = new double[zf.length];
        for (int i = 0; i < z.length; i++) {
            z[i] = zf[i];
        }
        for (boolean perPixel : new boolean[] {false, true}) {
            for (boolean normalize : new boolean[] {false, true}) {
                Tensor gt = perPixel ? Torch.randn(ScalarType.Float, CPU, n, p) : Torch.fromFloats(new float[] {1.5f, -0.5f, 2f}, n);
                float[] gf = Torch.toFloats(gt);
                double[] g = new double[gf.length];
                for (int i = 0; i < g.length; i++) {
                    g[i] = gf[i];
                }
                double h = -0.3;
                float[] grad = Torch.toFloats(MaskPolicy.gradient(zt, s.masks(), tau, normalize, gt, h));
                double eps = 1e-6, maxAbs = 0, maxErr = 0;
                for (int j = 0; j < n * p; j++) {
                    double keep = z[j];
                    z[j] = keep + eps;
                    double up = objective(z, bits, n, p, tau, g, perPixel, h, normalize);
                    z[j] = keep - eps;
                    double down = objective(z, bits, n, p, tau, g, perPixel, h, normalize);
                    z[j] = keep;
                    double fd = (up - down) / (2 * eps);
                    maxAbs = Math.max(maxAbs, Math.abs(fd));
                    maxErr = Math.max(maxErr, Math.abs(fd - grad[j]));
                }
                assertTrue(maxErr <= 1e-4 * maxAbs, "perPixel=" + perPixel + " normalize=" + normalize + ": max error "
                        + maxErr + " of " + maxAbs);
            }
        }
    }

    @Test
    void badArguments() {
        Tensor z = Torch.randn(ScalarType.Float, CPU, 2, 16);
        MaskPolicy.Sample s = MaskPolicy.sample(z, 1, 0, 0, false);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MaskPolicy.sample(z, 0, 0, 0, false));
        assertTrue(e.getMessage().contains("temperature: must be finite and > 0, got 0.0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> MaskPolicy.sample(z, Double.NaN, 0, 0, false));
        assertTrue(e.getMessage().contains("temperature"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> MaskPolicy.sample(z, -1, 0, 0, false));
        assertTrue(e.getMessage().contains("temperature"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> MaskPolicy.logProb(Torch.randn(ScalarType.Float, CPU, 3, 16), s.masks(), 1, false));
        assertTrue(e.getMessage().contains("masks: BitMasks[2 x [16]] do not match the logits' 3 samples"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> MaskPolicy.gradient(z, s.masks(), 1, false, Torch.zeros(ScalarType.Float, CPU, 5), 0));
        assertTrue(e.getMessage().contains("g: shape [5] is neither [2] (per sample) nor [2, 16] (per pixel)"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> MaskPolicy.sample(z, 1, 0, 0, false, MaskTargets.of(Torch.zeros(ScalarType.Byte, CPU, 2, 15)),
                        MaskMetrics.Spec.DEFAULT));
        assertTrue(e.getMessage().contains("targets: shape [2, 15] does not match logits [2, 16]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> MaskPolicy.sample(z.to(ScalarType.Long), 1, 0, 0, false));
        assertTrue(e.getMessage().contains("logits: dtype int64 not supported"), e.getMessage());
    }
}
