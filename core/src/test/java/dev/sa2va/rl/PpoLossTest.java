package dev.sa2va.rl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import java.util.Random;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

/**
 * The fused PPO loss (CPU kernel) against CleanRL's and TRL's formulas written here in fp64, and its gradients against
 * finite differences of that reference.
 */
class PpoLossTest {
    static final Device CPU = Devices.cpu();

    /** The batch in double. mask/values/entropy/ref may be null; adv per token (length B*L) or per row (length B). */
    record Data(int b, int l, double[] logp, double[] old, double[] adv, boolean[] mask, double[] v, double[] vOld,
                double[] ret, double[] ent, double[] ref) {
    }

    /**
     * {loss, pg, v, entropy, approx_kl, old_approx_kl, clipfrac, clip_active, kl_ref, tokens}, straight from CleanRL
     * ppo.py (clipped surrogate, clipped value loss, entropy bonus, per-minibatch advantage normalisation) and TRL
     * GRPOTrainer (asymmetric clip, k3 KL, loss_type aggregation).
     */
    static double[] reference(Data d, PpoLoss.Config c) {
        int b = d.b, l = d.l, m = b * l;
        boolean perToken = d.adv.length == m;
        double[] rowCnt = new double[b];
        double tokens = 0;
        for (int i = 0; i < m; i++) {
            if (d.mask == null || d.mask[i]) {
                rowCnt[i / l]++;
                tokens++;
            }
        }
        double mean = 0, inv = 1;
        if (c.normalizeAdvantages()) {
            double s = 0, ss = 0, cnt = 0;
            for (int i = 0; i < d.adv.length; i++) {
                if (perToken && d.mask != null && !d.mask[i]) {
                    continue;
                }
                s += d.adv[i];
                cnt++;
            }
            mean = s / cnt;
            for (int i = 0; i < d.adv.length; i++) {
                if (perToken && d.mask != null && !d.mask[i]) {
                    continue;
                }
                ss += (d.adv[i] - mean) * (d.adv[i] - mean);
            }
            inv = 1 / (Math.sqrt(ss / (cnt - 1)) + c.advEps());
        }
        double lo = 1 - c.epsLow(), hi = 1 + c.epsHigh();
        double[] s = new double[10];
        for (int i = 0; i < m; i++) {
            if (d.mask != null && !d.mask[i]) {
                continue;
            }
            int row = i / l;
            double w = switch (c.aggregation()) {
                case TOKEN_MEAN -> 1 / Math.max(tokens, 1);
                case SEQUENCE_MEAN -> 1 / (b * Math.max(rowCnt[row], 1));
                case CONSTANT -> 1 / c.aggConstant();
            };
            double a = ((perToken ? d.adv[i] : d.adv[row]) - mean) * inv;
            double logr = d.logp[i] - d.old[i], ratio = Math.exp(logr);
            double pg = Math.max(-a * ratio, -a * Math.min(Math.max(ratio, lo), hi));
            double kl = d.ref == null ? 0 : Math.exp(d.ref[i] - d.logp[i]) - (d.ref[i] - d.logp[i]) - 1;
            double v = 0;
            if (d.v != null) {
                double vu = (d.v[i] - d.ret[i]) * (d.v[i] - d.ret[i]);
                if (c.epsValue() > 0) {
                    double vc = d.vOld[i] + Math.min(Math.max(d.v[i] - d.vOld[i], -c.epsValue()), c.epsValue()) - d.ret[i];
                    v = 0.5 * Math.max(vu, vc * vc);
                } else {
                    v = 0.5 * vu;
                }
            }
            double h = d.ent == null ? 0 : d.ent[i];
            s[1] += w * pg;
            s[2] += w * v;
            s[3] += w * h;
            s[0] += w * kl; // temporarily: weighted kl
            s[4] += (ratio - 1) - logr;
            s[5] += -logr;
            s[6] += (ratio < lo || ratio > hi) ? 1 : 0;
            s[7] += ((ratio < lo && a < 0) || (ratio > hi && a > 0)) ? 1 : 0;
            s[8] += kl;
        }
        double tk = Math.max(tokens, 1);
        double[] out = new double[10];
        out[0] = s[1] + c.klCoef() * s[0] + c.vfCoef() * s[2] - c.entCoef() * s[3];
        out[1] = s[1];
        out[2] = s[2];
        out[3] = s[3];
        for (int k = 4; k <= 8; k++) {
            out[k] = s[k] / tk;
        }
        out[9] = tokens;
        return out;
    }

    static Tensor f(double[] x, long... shape) {
        return x == null ? null : Torch.fromDoubles(x, shape).to(ScalarType.Float);
    }

    /** Rounds to float32 so that the reference sees exactly the kernel's inputs. */
    static double[] rnd(Random r, int m, double scale, double offset) {
        double[] x = new double[m];
        for (int i = 0; i < m; i++) {
            x[i] = (float) (offset + scale * r.nextGaussian());
        }
        return x;
    }

    static Data data(Random r, int b, int l, boolean perToken, boolean mask, boolean values, boolean ent, boolean ref) {
        int m = b * l;
        double[] logp = rnd(r, m, 1, -2), old = new double[m];
        for (int i = 0; i < m; i++) {
            old[i] = (float) (logp[i] + 0.3 * r.nextGaussian());
        }
        boolean[] mk = null;
        if (mask) {
            mk = new boolean[m];
            for (int i = 0; i < m; i++) {
                mk[i] = r.nextDouble() < 0.7;
            }
            if (b > 2) {
                for (int j = 0; j < l; j++) {
                    mk[l + j] = false; // a row with no active token
                }
            }
        }
        return new Data(b, l, logp, old, rnd(r, perToken ? m : b, 1, 0.2), mk, values ? rnd(r, m, 1, 0) : null,
                values ? rnd(r, m, 1, 0) : null, values ? rnd(r, m, 1, 0) : null, ent ? rnd(r, m, 0.3, 1) : null,
                ref ? rnd(r, m, 1, -2) : null);
    }

    static PpoLoss.Result run(Data d, PpoLoss.Config c, boolean twoD) {
        long[] sh = twoD ? new long[] {d.b, d.l} : new long[] {(long) d.b * d.l};
        Tensor mask = null;
        if (d.mask != null) {
            byte[] mb = new byte[d.mask.length];
            for (int i = 0; i < mb.length; i++) {
                mb[i] = (byte) (d.mask[i] ? 1 : 0);
            }
            mask = Torch.fromBytes(mb, sh);
        }
        long[] ash = d.adv.length == d.b * d.l ? sh : new long[] {d.b};
        PpoLoss.Batch batch = PpoLoss.Batch.of(f(d.logp, sh), f(d.old, sh), f(d.adv, ash)).withMask(mask)
                .withEntropy(f(d.ent, sh)).withReference(f(d.ref, sh));
        if (d.v != null) {
            batch = batch.withValues(f(d.v, sh), f(d.vOld, sh), f(d.ret, sh));
        }
        return PpoLoss.compute(batch, c);
    }

    /** Is the reference differentiable at token i (no clip boundary or max tie within 1e-4)? */
    static boolean smooth(Data d, PpoLoss.Config c, int i) {
        double ratio = Math.exp(d.logp[i] - d.old[i]);
        if (Math.abs(ratio - (1 - c.epsLow())) < 1e-4 || Math.abs(ratio - (1 + c.epsHigh())) < 1e-4) {
            return false;
        }
        if (d.v != null && c.epsValue() > 0) {
            double dd = d.v[i] - d.vOld[i];
            if (Math.abs(Math.abs(dd) - c.epsValue()) < 1e-4) {
                return false;
            }
            double vc = d.vOld[i] + Math.min(Math.max(dd, -c.epsValue()), c.epsValue()) - d.ret[i];
            double vu = d.v[i] - d.ret[i];
            if (Math.abs(vu * vu - vc * vc) < 1e-4 && Math.abs(dd) > c.epsValue()) {
                return false;
            }
        }
        return true;
    }

    static void checkCase(String ctx, Data d, PpoLoss.Config c, boolean twoD) {
        PpoLoss.Result res = run(d, c, twoD);
        double[] want = reference(d, c);
        float[] got = res.toHost();
        String[] names = {"loss", "pg", "v", "entropy", "approx_kl", "old_approx_kl", "clipfrac", "clip_active", "kl_ref",
            "tokens"};
        for (int k = 0; k < 10; k++) {
            assertEquals(want[k], got[k], 2e-6 * Math.max(1, Math.abs(want[k])), ctx + " " + names[k]);
        }
        // gradients: central differences of the fp64 reference loss
        float[] gl = Torch.toFloats(res.dlogp());
        float[] gv = d.v == null ? null : Torch.toFloats(res.dvalue());
        float[] gh = d.ent == null ? null : Torch.toFloats(res.dentropy());
        if (d.v == null) {
            assertNull(res.dvalue());
        }
        double h = 1e-6;
        for (double[] x : new double[][] {d.logp, d.v, d.ent}) {
            if (x == null) {
                continue;
            }
            float[] g = x == d.logp ? gl : x == d.v ? gv : gh;
            double maxAbs = 1e-12, maxErr = 0;
            for (int i = 0; i < x.length; i++) {
                if (!smooth(d, c, i)) {
                    continue;
                }
                double keep = x[i];
                x[i] = keep + h;
                double up = reference(d, c)[0];
                x[i] = keep - h;
                double down = reference(d, c)[0];
                x[i] = keep;
                double fd = (up - down) / (2 * h);
                maxAbs = Math.max(maxAbs, Math.abs(fd));
                maxErr = Math.max(maxErr, Math.abs(fd - g[i]));
                if (d.mask != null && !d.mask[i]) {
                    assertEquals(0f, g[i], ctx + ": masked token has no gradient");
                }
            }
            assertTrue(maxErr <= 1e-4 * maxAbs + 1e-9, ctx + " gradient (" + (x == d.logp ? "logp" : x == d.v ? "values"
                    : "entropy") + ") vs finite differences: max error " + maxErr + " of " + maxAbs);
        }
    }

    @Test
    void cleanRlConfiguration() {
        Random r = new Random(61);
        // CleanRL: a flat minibatch of transitions (L = 1), values, entropy, normalised advantages
        checkCase("cleanrl flat", data(r, 37, 1, true, false, true, true, false), PpoLoss.Config.CLEANRL, false);
        checkCase("cleanrl 2-d", data(r, 4, 9, true, false, true, true, false), PpoLoss.Config.CLEANRL, true);
        checkCase("cleanrl no value clip", data(r, 5, 6, true, false, true, true, false),
                PpoLoss.Config.CLEANRL.withValue(0, 0.5), true);
        checkCase("cleanrl no normalisation", data(r, 5, 6, true, false, true, false, false),
                PpoLoss.Config.CLEANRL.withNormalization(false, 1e-8), true);
    }

    @Test
    void trlGrpoConfigurations() {
        Random r = new Random(62);
        PpoLoss.Config dapo = PpoLoss.Config.TRL_GRPO.withClip(0.2, 0.28).withKl(0.04);
        checkCase("grpo token mean", data(r, 6, 11, false, true, false, false, true), dapo, true);
        checkCase("grpo sequence mean", data(r, 6, 11, false, true, false, true, true),
                dapo.withAggregation(PpoLoss.Aggregation.SEQUENCE_MEAN, 0).withEntropy(0.01), true);
        checkCase("dr grpo constant", data(r, 6, 11, false, true, false, false, true),
                dapo.withAggregation(PpoLoss.Aggregation.CONSTANT, 6 * 16), true);
        checkCase("per-token advantages, mask, normalised", data(r, 5, 8, true, true, true, true, false),
                PpoLoss.Config.CLEANRL, true);
        checkCase("one token", data(r, 1, 1, true, false, false, false, false), PpoLoss.Config.TRL_GRPO, true);
    }

    @Test
    void clippedTokensGetNoPolicyGradient() {
        // A > 0 and ratio above 1 + eps: the clipped term is the max, so d loss / d logp = 0 (and the reverse side)
        double[] logp = {Math.log(1.5), Math.log(0.5), Math.log(1.05), Math.log(0.5)};
        double[] old = {0, 0, 0, 0};
        double[] adv = {1, -1, 1, 1};
        Data d = new Data(1, 4, logp, old, adv, null, null, null, null, null, null);
        PpoLoss.Config c = PpoLoss.Config.TRL_GRPO;
        float[] g = Torch.toFloats(run(d, c, true).dlogp());
        assertEquals(0f, g[0]);
        assertEquals(0f, g[1]);
        assertEquals(-1.05 / 4, g[2], 1e-6);   // inside the interval: -A ratio w
        assertEquals(-0.5 / 4, g[3], 1e-6);    // below 1 - eps with A > 0: the unclipped term is the max
        float[] s = Torch.toFloats(run(d, c, true).scalars());
        assertEquals(0.75f, s[PpoLoss.CLIPFRAC], 1e-6, "CleanRL clipfrac counts |ratio - 1| > eps");
        assertEquals(0.5f, s[PpoLoss.CLIP_ACTIVE], 1e-6, "TRL clip_ratio counts only the clipped objective");
    }

    @Test
    void outputsCanBeReused() {
        Random r = new Random(63);
        Data d = data(r, 4, 8, true, true, true, true, false);
        PpoLoss.Result a = run(d, PpoLoss.Config.CLEANRL, true);
        float[] want = a.toHost();
        float[] gl = Torch.toFloats(a.dlogp());
        PpoLoss.Result b = run(data(r, 4, 8, true, true, true, true, false), PpoLoss.Config.CLEANRL, true);
        long[] sh = {4, 8};
        PpoLoss.Batch batch = PpoLoss.Batch.of(f(d.logp, sh), f(d.old, sh), f(d.adv, sh)).withMask(maskTensor(d))
                .withValues(f(d.v, sh), f(d.vOld, sh), f(d.ret, sh)).withEntropy(f(d.ent, sh));
        PpoLoss.Result c = PpoLoss.compute(batch, PpoLoss.Config.CLEANRL, b);
        assertTrue(c == b, "fitting outputs are reused");
        org.junit.jupiter.api.Assertions.assertArrayEquals(want, c.toHost());
        org.junit.jupiter.api.Assertions.assertArrayEquals(gl, Torch.toFloats(c.dlogp()));
    }

    static Tensor maskTensor(Data d) {
        byte[] mb = new byte[d.mask.length];
        for (int i = 0; i < mb.length; i++) {
            mb[i] = (byte) (d.mask[i] ? 1 : 0);
        }
        return Torch.fromBytes(mb, d.b, d.l);
    }

    @Test
    void badArguments() {
        Tensor x = Torch.randn(ScalarType.Float, CPU, 3, 4);
        GaeTest.assertMessage(() -> PpoLoss.compute(PpoLoss.Batch.of(x, x, Torch.randn(ScalarType.Float, CPU, 4)),
                PpoLoss.Config.CLEANRL), "advantages: shape [4] is neither the shape of logp [3, 4] nor [3]");
        GaeTest.assertMessage(() -> PpoLoss.compute(PpoLoss.Batch.of(x, x, x), PpoLoss.Config.TRL_GRPO.withKl(0.1)),
                "klCoef: 0.1 needs refLogp");
        GaeTest.assertMessage(() -> PpoLoss.Config.CLEANRL.withClip(1.0, 0.2), "epsLow: must be in [0, 1)");
        GaeTest.assertMessage(() -> PpoLoss.compute(PpoLoss.Batch.of(x, x, x).withValues(x, null, x),
                PpoLoss.Config.CLEANRL), "values, valuesOld and returns go together");
        GaeTest.assertMessage(() -> PpoLoss.compute(PpoLoss.Batch.of(x, Torch.randn(ScalarType.Float, CPU, 3, 5), x),
                PpoLoss.Config.CLEANRL), "logpOld: shape [3, 5] does not match logp shape [3, 4]");
        GaeTest.assertMessage(() -> PpoLoss.compute(PpoLoss.Batch.of(x, x, x).withMask(Torch.zeros(ScalarType.Float, CPU, 3, 4)),
                PpoLoss.Config.CLEANRL), "mask: dtype float32 not supported");
        GaeTest.assertMessage(() -> PpoLoss.Config.TRL_GRPO.withAggregation(PpoLoss.Aggregation.CONSTANT, 0),
                "aggConstant: CONSTANT aggregation needs a finite constant > 0");
        GaeTest.assertMessage(() -> PpoLoss.Config.TRL_GRPO.withEntropy(Double.NaN), "must be finite");
    }
}
