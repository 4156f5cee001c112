package dev.sa2va.rl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import java.util.Random;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

/** GAE (CPU kernel) against fp64 sequential references, including CleanRL's loop as written in ppo.py. */
class GaeTest {
    static final Device CPU = Devices.cpu();

    /** {advantages, returns} in double from the recurrence documented in Gae. */
    static double[][] reference(float[] r, float[] v, boolean[] term, boolean[] trunc, float[] tv, float[] boot, int t,
                                int n, double gamma, double lambda) {
        double[] adv = new double[t * n], ret = new double[t * n];
        for (int j = 0; j < n; j++) {
            double a = 0;
            for (int s = t - 1; s >= 0; s--) {
                int i = s * n + j;
                double next = s + 1 < t ? v[(s + 1) * n + j] : (boot == null ? 0 : boot[j]);
                boolean tr = trunc != null && trunc[i];
                if (tr) {
                    next = tv[i];
                }
                double delta = r[i] + (term[i] ? 0 : gamma * next) - v[i];
                a = delta + ((term[i] || tr) ? 0 : gamma * lambda * a);
                adv[i] = a;
                ret[i] = a + v[i];
            }
        }
        return new double[][] {adv, ret};
    }

    /** CleanRL ppo.py's loop, verbatim in structure: dones[t] = observation t starts a new episode. */
    static double[] cleanRl(float[] rewards, float[] values, float[] dones, float[] nextDone, float[] nextValue, int t,
                            int n, double gamma, double lambda) {
        double[] adv = new double[t * n];
        double[] lastgaelam = new double[n];
        for (int s = t - 1; s >= 0; s--) {
            for (int j = 0; j < n; j++) {
                double nextnonterminal, nextvalues;
                if (s == t - 1) {
                    nextnonterminal = 1.0 - nextDone[j];
                    nextvalues = nextValue[j];
                } else {
                    nextnonterminal = 1.0 - dones[(s + 1) * n + j];
                    nextvalues = values[(s + 1) * n + j];
                }
                double delta = rewards[s * n + j] + gamma * nextvalues * nextnonterminal - values[s * n + j];
                lastgaelam[j] = delta + gamma * lambda * nextnonterminal * lastgaelam[j];
                adv[s * n + j] = lastgaelam[j];
            }
        }
        return adv;
    }

    static void assertClose(double[] want, float[] got, double rel, String ctx) {
        double scale = 1;
        for (double w : want) {
            scale = Math.max(scale, Math.abs(w));
        }
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], rel * scale, ctx + " element " + i);
        }
    }

    static float[] randn(Random rnd, int m) {
        float[] x = new float[m];
        for (int i = 0; i < m; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }

    @Test
    void matchesTheFp64RecurrenceForShapesDonesAndTruncation() {
        Random rnd = new Random(41);
        int[][] shapes = {{1, 1}, {1, 5}, {7, 1}, {33, 3}, {128, 8}, {300, 2}};
        for (int[] sh : shapes) {
            int t = sh[0], n = sh[1], m = t * n;
            for (double pDone : new double[] {0, 0.1, 1}) {
                for (boolean withTrunc : new boolean[] {false, true}) {
                    for (ScalarType flagType : new ScalarType[] {ScalarType.Byte, ScalarType.Float, ScalarType.Bool}) {
                        float[] r = randn(rnd, m), v = randn(rnd, m), tv = randn(rnd, m), boot = randn(rnd, n);
                        boolean[] term = new boolean[m], trunc = withTrunc ? new boolean[m] : null;
                        float[] termF = new float[m], truncF = new float[m];
                        for (int i = 0; i < m; i++) {
                            term[i] = rnd.nextDouble() < pDone;
                            termF[i] = term[i] ? 1 : 0;
                            if (withTrunc) {
                                trunc[i] = !term[i] && rnd.nextDouble() < 0.15;
                                truncF[i] = trunc[i] ? 1 : 0;
                                if (!trunc[i]) {
                                    tv[i] = Float.NaN; // never read where not truncated
                                }
                            }
                        }
                        double gamma = 0.97, lambda = 0.9;
                        Gae.Rollout ro = Gae.Rollout.of(Torch.fromFloats(r, t, n), Torch.fromFloats(v, t, n),
                                Torch.fromFloats(termF, t, n).to(flagType), Torch.fromFloats(boot, n));
                        if (withTrunc) {
                            ro = ro.withTruncation(Torch.fromFloats(truncF, t, n).to(flagType), Torch.fromFloats(tv, t, n));
                        }
                        Gae.Result res = Gae.compute(ro, Gae.Options.CLEANRL.withGammaLambda(gamma, lambda));
                        double[][] ref = reference(r, v, term, trunc, tv, boot, t, n, gamma, lambda);
                        String ctx = "T=" + t + " N=" + n + " pDone=" + pDone + " trunc=" + withTrunc + " " + flagType;
                        assertClose(ref[0], Torch.toFloats(res.advantages()), 1e-5, ctx + " advantages");
                        assertClose(ref[1], Torch.toFloats(res.returns()), 1e-5, ctx + " returns");
                        assertNull(res.normStats());
                    }
                }
            }
        }
    }

    @Test
    void reproducesCleanRlPpoLoop() {
        Random rnd = new Random(42);
        int t = 128, n = 4;
        float[] r = randn(rnd, t * n), v = randn(rnd, t * n), nextValue = randn(rnd, n);
        float[] dones = new float[t * n], nextDone = new float[n];
        for (int i = 0; i < t * n; i++) {
            dones[i] = rnd.nextDouble() < 0.05 ? 1 : 0;
        }
        nextDone[1] = 1;
        double[] want = cleanRl(r, v, dones, nextDone, nextValue, t, n, 0.99, 0.95);
        // our terminated[t] = CleanRL's dones[t + 1], and next_done for the last step
        float[] term = new float[t * n];
        System.arraycopy(dones, n, term, 0, (t - 1) * n);
        System.arraycopy(nextDone, 0, term, (t - 1) * n, n);
        Gae.Result res = Gae.compute(Torch.fromFloats(r, t, n), Torch.fromFloats(v, t, n), Torch.fromFloats(term, t, n),
                Torch.fromFloats(nextValue, n));
        assertClose(want, Torch.toFloats(res.advantages()), 1e-5, "CleanRL");
    }

    @Test
    void fusedNormalisationUsesBesselStd() {
        Random rnd = new Random(43);
        int t = 50, n = 6, m = t * n;
        float[] r = randn(rnd, m), v = randn(rnd, m);
        Tensor zeros = Torch.zeros(ScalarType.Byte, CPU, t, n);
        Gae.Result raw = Gae.compute(Gae.Rollout.of(Torch.fromFloats(r, t, n), Torch.fromFloats(v, t, n), zeros, null),
                Gae.Options.CLEANRL);
        Gae.Result norm = Gae.compute(Gae.Rollout.of(Torch.fromFloats(r, t, n), Torch.fromFloats(v, t, n), zeros, null),
                Gae.Options.CLEANRL.withNormalize(true, 1e-8));
        float[] a = Torch.toFloats(raw.advantages());
        double mean = 0, ss = 0;
        for (float x : a) {
            mean += x;
        }
        mean /= m;
        for (float x : a) {
            ss += (x - mean) * (x - mean);
        }
        double sd = Math.sqrt(ss / (m - 1));
        float[] st = Torch.toFloats(norm.normStats());
        assertEquals(mean, st[0], 1e-5 * Math.max(1, Math.abs(mean)));
        assertEquals(sd, st[1], 1e-5 * sd);
        double[] want = new double[m];
        for (int i = 0; i < m; i++) {
            want[i] = (a[i] - mean) / (sd + 1e-8);
        }
        assertClose(want, Torch.toFloats(norm.advantages()), 1e-5, "normalised");
        assertTrue(Torch.relError(norm.returns(), raw.returns()) == 0, "returns come from the raw advantages");
        Gae.Result into = Gae.compute(Gae.Rollout.of(Torch.fromFloats(r, t, n), Torch.fromFloats(v, t, n), zeros, null),
                Gae.Options.CLEANRL.withNormalize(true, 1e-8), raw);
        assertTrue(into.advantages() == raw.advantages() && into.returns() == raw.returns(), "outputs reused");
        assertTrue(Torch.relError(into.advantages(), norm.advantages()) == 0);
    }

    @Test
    void badArguments() {
        Tensor x = Torch.randn(ScalarType.Float, CPU, 4, 3);
        Tensor d = Torch.zeros(ScalarType.Byte, CPU, 4, 3);
        assertMessage(() -> Gae.Options.CLEANRL.withGammaLambda(1.5, 0.9), "gamma: must be in [0, 1], got 1.5");
        assertMessage(() -> Gae.Options.CLEANRL.withGammaLambda(0.9, -0.1), "lambda: must be in [0, 1], got -0.1");
        assertMessage(() -> Gae.Options.CLEANRL.withGammaLambda(Double.NaN, 0.9), "gamma: must be in [0, 1], got NaN");
        assertMessage(() -> Gae.compute(x, Torch.randn(ScalarType.Float, CPU, 4, 2), d, null),
                "values: shape [4, 2] does not match rewards shape [4, 3]");
        assertMessage(() -> Gae.compute(x, x, d, Torch.randn(ScalarType.Float, CPU, 4)), "bootstrap: expected shape [3]");
        assertMessage(() -> Gae.compute(x, x, d.to(ScalarType.Long), null), "terminated: dtype int64 not supported");
        assertMessage(() -> Gae.compute(x.to(ScalarType.Double), x, d, null), "rewards: dtype float64 not supported");
        assertMessage(() -> Gae.compute(new Gae.Rollout(x, x, d, d, null, null), Gae.Options.CLEANRL),
                "truncated and truncValues go together");
        assertMessage(() -> Gae.compute(Gae.Rollout.of(Torch.randn(ScalarType.Float, CPU, 1, 1),
                Torch.randn(ScalarType.Float, CPU, 1, 1), Torch.zeros(ScalarType.Byte, CPU, 1, 1), null),
                Gae.Options.CLEANRL.withNormalize(true, 1e-8)), "normalize: needs at least 2 advantages");
        assertMessage(() -> Gae.compute(Torch.randn(ScalarType.Float, CPU, 12), x, d, null), "rewards: expected 2 dimensions");
    }

    static void assertMessage(org.junit.jupiter.api.function.Executable call, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(expected), "message was: " + e.getMessage());
    }
}
