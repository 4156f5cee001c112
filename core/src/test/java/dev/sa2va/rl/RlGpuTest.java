package dev.sa2va.rl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.metrics.BitMasks;
import dev.sa2va.metrics.MaskMetrics;
import dev.sa2va.metrics.MaskTargets;
import dev.sa2va.testing.Gpu;
import java.util.Arrays;
import java.util.Random;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** CUDA mask policy, GAE (both schedules), group advantages and PPO loss against the CPU kernels (checked vs fp64). */
@Tag("gpu")
class RlGpuTest {
    static final Device CUDA = Devices.cuda(0);
    static final Device CPU = Devices.cpu();

    @BeforeEach
    void needGpu() {
        Gpu.require();
    }

    static Tensor cuda(Tensor t) {
        return t.to(CUDA, Torch.dtype(t));
    }

    static void assertRel(Tensor want, Tensor got, double tol, String ctx) {
        assertTrue(got.is_cuda(), ctx + ": result not on the GPU");
        double e = Torch.relError(got, want);
        assertTrue(e <= tol, ctx + ": relative error " + e + " > " + tol);
    }

    @Test
    void samplingMatchesCpuStreamAndScores() {
        Torch.seed(201);
        for (long[] shape : new long[][] {{3, 1001}, {8, 512, 512}, {16, 4099}}) {
            for (ScalarType st : new ScalarType[] {ScalarType.Float, ScalarType.BFloat16}) {
                Tensor z = Torch.randn(ScalarType.Float, CPU, shape).mul(Torch.scalar(2.0)).to(st);
                MaskPolicy.Sample c = MaskPolicy.sample(z, 0.8, 77, 5, true);
                MaskPolicy.Sample g = MaskPolicy.sample(cuda(z), 0.8, 77, 5, true);
                String ctx = st + " " + Arrays.toString(shape);
                byte[] bc = Torch.toBytes(c.masks().unpack()), bg = Torch.toBytes(g.masks().unpack());
                long diff = 0;
                for (int i = 0; i < bc.length; i++) {
                    diff += bc[i] != bg[i] ? 1 : 0;
                }
                // the same Philox stream; only |u - p| ~ 1e-7 can decide differently (device vs host sigmoid)
                assertTrue(diff <= Math.max(2, bc.length / 100_000), ctx + ": " + diff + " of " + bc.length + " differ");
                assertRel(c.policy(), g.policy(), 1e-5, ctx + " log pi / entropy");
                assertArrayEquals(Torch.toBytes(g.masks().bits()),
                        Torch.toBytes(MaskPolicy.sample(cuda(z), 0.8, 77, 5, true).masks().bits()), ctx + " reproducible");
                // evaluation of the GPU samples on the GPU equals the sampling pass
                assertRel(g.policy(), MaskPolicy.logProb(cuda(z), g.masks(), 0.8, true), 1e-6, ctx + " logProb");
            }
        }
        // sample and score: the scores of each sample equal evaluating the sampled masks
        int groups = 2, gsize = 8;
        Tensor z = Torch.randn(ScalarType.BFloat16, CUDA, groups * gsize, 256, 256);
        Tensor y = Torch.rand(ScalarType.Float, CUDA, groups, 256, 256).lt(Torch.scalar(0.2)).to(ScalarType.Byte);
        MaskMetrics.Spec spec = MaskMetrics.Spec.DEFAULT.withReward(1, 0.5, 0, 0, 0);
        for (MaskTargets t : new MaskTargets[] {MaskTargets.of(y).group(gsize), MaskTargets.of(BitMasks.pack(y, "y")).group(gsize)}) {
            MaskPolicy.Sample s = MaskPolicy.sample(z, 1.0, 9, 0, true, t, spec);
            MaskMetrics.Result e = MaskMetrics.evaluate(s.masks(), t, spec);
            assertArrayEquals(Torch.toDoubles(e.stats()), Torch.toDoubles(s.scores().stats()));
            assertArrayEquals(Torch.toFloats(e.scores()), Torch.toFloats(s.scores().scores()));
        }
    }

    @Test
    void sampleMeansOnGpu() {
        long p = 1 << 20;
        Tensor z = Torch.full(0.9, ScalarType.Float, CUDA, 2, p);
        float[] mean = Torch.toFloats(MaskPolicy.sample(z, 2.0, 1, 2, false).masks().unpack().to(ScalarType.Float)
                .mean(new long[] {1}, false, new org.bytedeco.pytorch.ScalarTypeOptional()));
        double pr = 1 / (1 + Math.exp(-0.45)), sd = Math.sqrt(pr * (1 - pr) / p);
        for (float m : mean) {
            assertTrue(Math.abs(m - pr) < 5 * sd, "mean " + m + " vs " + pr);
        }
    }

    @Test
    void logProbPerPixelAndGradientMatchCpu() {
        Torch.seed(202);
        for (long[] shape : new long[][] {{3, 1001}, {4, 256, 256}}) {
            Tensor z = Torch.randn(ScalarType.Float, CPU, shape);
            long n = shape[0], p = z.numel() / n;
            BitMasks m = MaskPolicy.sample(z, 1.2, 3, 3, false).masks();
            BitMasks mg = new BitMasks(cuda(m.bits()), m.sampleShape());
            Tensor zg = cuda(z);
            String ctx = Arrays.toString(shape);
            assertRel(MaskPolicy.logProb(z, m, 1.2, false), MaskPolicy.logProb(zg, mg, 1.2, false), 1e-5, ctx);
            assertRel(MaskPolicy.logProbPerPixel(z, m, 1.2), MaskPolicy.logProbPerPixel(zg, mg, 1.2), 1e-5, ctx + " per pixel");
            Tensor gs = Torch.randn(ScalarType.Float, CPU, n), gp = Torch.randn(ScalarType.Float, CPU, n, p);
            for (Tensor g : new Tensor[] {gs, gp}) {
                for (boolean norm : new boolean[] {false, true}) {
                    assertRel(MaskPolicy.gradient(z, m, 1.2, norm, g, -0.01), MaskPolicy.gradient(zg, mg, 1.2, norm, cuda(g), -0.01),
                            1e-5, ctx + " gradient, g " + Arrays.toString(dev.sa2va.core.TensorCheck.shapeOf(g)));
                }
            }
            Tensor zb = z.to(ScalarType.BFloat16);
            assertRel(MaskPolicy.gradient(zb, m, 1.2, true, gs, 0), MaskPolicy.gradient(cuda(zb), mg, 1.2, true, cuda(gs), 0),
                    1e-2, ctx + " bf16 gradient");
        }
    }

    @Test
    void gaeMatchesCpuForEverySchedule() {
        Random rnd = new Random(203);
        // register scan: chunks of 4, 8 and 16 steps, T not a multiple of the chunk, the largest T per block
        // ({8192, 1}), beyond it ({9000, 1}: falls back to the two-sweep scan), normalisation in a cooperative launch
        // ({1024, 1024}) and its fallback when the grid is larger than what fits at once ({3000, 700})
        int[][] shapes = {{1, 1}, {1, 7}, {5, 1}, {128, 8}, {2048, 16}, {32, 4096}, {1000, 3}, {257, 33}, {4096, 2},
            {8192, 1}, {9000, 1}, {1024, 1024}, {3000, 700}, {33, 5}};
        for (int[] sh : shapes) {
            int t = sh[0], n = sh[1], m = t * n;
            float[] r = new float[m], v = new float[m], tv = new float[m], term = new float[m], trunc = new float[m];
            float[] boot = new float[n];
            for (int i = 0; i < m; i++) {
                r[i] = (float) rnd.nextGaussian();
                v[i] = (float) rnd.nextGaussian();
                tv[i] = (float) rnd.nextGaussian();
                term[i] = rnd.nextDouble() < 0.02 ? 1 : 0;
                trunc[i] = term[i] == 0 && rnd.nextDouble() < 0.01 ? 1 : 0;
            }
            for (int j = 0; j < n; j++) {
                boot[j] = (float) rnd.nextGaussian();
            }
            Gae.Rollout rc = Gae.Rollout.of(Torch.fromFloats(r, t, n), Torch.fromFloats(v, t, n),
                    Torch.fromFloats(term, t, n).to(ScalarType.Byte), Torch.fromFloats(boot, n))
                    .withTruncation(Torch.fromFloats(trunc, t, n).to(ScalarType.Byte), Torch.fromFloats(tv, t, n));
            Gae.Rollout rg = new Gae.Rollout(cuda(rc.rewards()), cuda(rc.values()), cuda(rc.terminated()),
                    cuda(rc.truncated()), cuda(rc.truncValues()), cuda(rc.bootstrap()));
            Gae.Result c = Gae.compute(rc, Gae.Options.CLEANRL);
            for (Gae.Schedule s : Gae.Schedule.values()) {
                String ctx = "T=" + t + " N=" + n + " " + s + " (chunks " + Gae.cudaChunks(t, n, s) + ")";
                Gae.Result g = Gae.compute(rg, Gae.Options.CLEANRL.withSchedule(s));
                assertRel(c.advantages(), g.advantages(), 1e-5, ctx + " advantages");
                assertRel(c.returns(), g.returns(), 1e-5, ctx + " returns");
                if (m >= 2) {
                    Gae.Result cn = Gae.compute(rc, Gae.Options.CLEANRL.withNormalize(true, 1e-8));
                    Gae.Result gn = Gae.compute(rg, Gae.Options.CLEANRL.withNormalize(true, 1e-8).withSchedule(s));
                    assertRel(cn.normStats(), gn.normStats(), 1e-5, ctx + " norm stats");
                    assertRel(cn.advantages(), gn.advantages(), 1e-5, ctx + " normalised");
                }
            }
        }
        assertEquals(1, Gae.cudaChunks(2048, 16, Gae.Schedule.PER_ENV));
        assertTrue(Gae.cudaChunks(2048, 16, Gae.Schedule.AUTO) > 1, "long T, few envs: chunked scan");
        assertTrue(Gae.cudaChunks(2048, 16, Gae.Schedule.CHUNKED) > 1);
        assertEquals(1, Gae.cudaChunks(32, 1 << 20, Gae.Schedule.AUTO), "many envs: one thread each");
        assertTrue(Gae.cudaChunks(1024, 1024, Gae.Schedule.AUTO) > 1, "1M elements: register scan");
        assertTrue(Gae.cudaChunks(1, 1, Gae.Schedule.REGISTER_SCAN) >= 1);
        assertEquals(Gae.cudaChunks(2048, 16, Gae.Schedule.WARP_SCAN), Gae.cudaChunks(2048, 16, Gae.Schedule.AUTO),
                "long T, few envs: warp scan");
        assertEquals(512, Gae.cudaChunks(2048, 16, Gae.Schedule.WARP_SCAN), "16 warps of 4-step strips");
    }

    @Test
    void groupAdvantagesMatchCpu() {
        Torch.seed(204);
        for (int g : new int[] {2, 8, 40}) {
            for (int b : new int[] {1, 100}) {
                Tensor r = Torch.rand(ScalarType.Float, CPU, (long) b * g);
                for (GroupAdvantages.Mode mode : GroupAdvantages.Mode.values()) {
                    GroupAdvantages.Result c = GroupAdvantages.compute(r, g, mode, 1e-4);
                    GroupAdvantages.Result gg = GroupAdvantages.compute(cuda(r), g, mode, 1e-4);
                    String ctx = mode + " G=" + g + " B=" + b;
                    assertRel(c.advantages(), gg.advantages(), 1e-6, ctx);
                    assertRel(c.groupStats(), gg.groupStats(), 1e-6, ctx + " stats");
                }
            }
        }
    }

    @Test
    void ppoLossMatchesCpu() {
        Torch.seed(205);
        // flat odd size (scalar path), 2-d aligned (float4 path), a large batch, per-row advantages with a mask;
        // GRPO-shaped calls (no values, no entropy, one advantage per row) take batches of two groups: aligned and
        // not, with and without a mask (the mask pass and the grid barrier of the cooperative launch), rows whose
        // mask is all zero, and a batch large enough for every resident block to take part
        PpoLoss.Config grpo = PpoLoss.Config.TRL_GRPO.withKl(0.04);
        PpoLoss.Config grpoSeq = PpoLoss.Config.TRL_GRPO.withAggregation(PpoLoss.Aggregation.SEQUENCE_MEAN, 0).withKl(0.04);
        Object[][] cases = {
            {new long[] {1001}, true, false, PpoLoss.Config.CLEANRL, true, true},
            {new long[] {64, 512}, true, true, PpoLoss.Config.CLEANRL, true, true},
            {new long[] {1024, 1024}, true, false, PpoLoss.Config.CLEANRL, true, true},
            {new long[] {96, 333}, false, true, PpoLoss.Config.TRL_GRPO.withClip(0.2, 0.28).withKl(0.04), false, true},
            {new long[] {96, 336}, false, true, grpoSeq, false, true},
            {new long[] {96, 336}, false, true, grpo, false, false},
            {new long[] {97, 333}, false, true, grpo, false, false},
            {new long[] {97, 333}, false, true, grpoSeq, false, false},
            {new long[] {64, 1}, false, true, grpoSeq, false, false},
            {new long[] {3, 5}, false, false, grpo, false, false},
            {new long[] {1024, 2048}, false, true, grpo, false, false},
            {new long[] {1024, 2048}, false, false, grpo, false, false},
            {new long[] {64, 256}, false, false, grpo, false, false},
            {new long[] {512, 1000}, false, true, grpoSeq, false, false},
        };
        for (Object[] cs : cases) {
            long[] sh = (long[]) cs[0];
            boolean perToken = (Boolean) cs[1], masked = (Boolean) cs[2], values = (Boolean) cs[4];
            boolean entropy = (Boolean) cs[5];
            PpoLoss.Config cfg = (PpoLoss.Config) cs[3];
            Tensor logp = Torch.randn(ScalarType.Float, CPU, sh).sub(Torch.scalar(2.0));
            Tensor old = logp.add(Torch.randn(ScalarType.Float, CPU, sh).mul(Torch.scalar(0.3)));
            // A ratio within rounding of a clip bound may fall on the other side on the GPU (its exp differs from the
            // CPU's in the last bit) and flip that token's gradient: keep ratios 1e-4 away from the bounds.
            Tensor ratio = logp.sub(old).exp();
            for (double bound : new double[] {1 - cfg.epsLow(), 1 + cfg.epsHigh()}) {
                Tensor near = ratio.sub(Torch.scalar(bound)).abs().lt(Torch.scalar(1e-4));
                old = torch.where(near, logp, old);
            }
            Tensor adv = perToken ? Torch.randn(ScalarType.Float, CPU, sh) : Torch.randn(ScalarType.Float, CPU, sh[0]);
            Tensor mask = null;
            if (masked) {
                mask = Torch.rand(ScalarType.Float, CPU, sh).lt(Torch.scalar(0.8)).to(ScalarType.Byte);
                if (sh.length == 2 && sh[0] >= 8) {
                    // empty rows: the first four, and every 7th (their sequence weight uses max(1, count))
                    byte[] mb = Torch.toBytes(mask);
                    for (long r = 0; r < sh[0]; r++) {
                        if (r < 4 || r % 7 == 0) {
                            Arrays.fill(mb, (int) (r * sh[1]), (int) ((r + 1) * sh[1]), (byte) 0);
                        }
                    }
                    mask = Torch.fromBytes(mb, sh);
                }
            }
            PpoLoss.Batch bc = PpoLoss.Batch.of(logp, old, adv).withMask(mask)
                    .withEntropy(entropy ? Torch.rand(ScalarType.Float, CPU, sh) : null);
            if (values) {
                bc = bc.withValues(Torch.randn(ScalarType.Float, CPU, sh), Torch.randn(ScalarType.Float, CPU, sh),
                        Torch.randn(ScalarType.Float, CPU, sh));
            }
            if (cfg.klCoef() != 0) {
                bc = bc.withReference(logp.add(Torch.randn(ScalarType.Float, CPU, sh).mul(Torch.scalar(0.1))));
            }
            PpoLoss.Batch bg = new PpoLoss.Batch(cuda(bc.logp()), cuda(bc.logpOld()), cuda(bc.advantages()),
                    bc.mask() == null ? null : cuda(bc.mask()), bc.values() == null ? null : cuda(bc.values()),
                    bc.valuesOld() == null ? null : cuda(bc.valuesOld()), bc.returns() == null ? null : cuda(bc.returns()),
                    bc.entropy() == null ? null : cuda(bc.entropy()), bc.refLogp() == null ? null : cuda(bc.refLogp()));
            PpoLoss.Result c = PpoLoss.compute(bc, cfg), g = PpoLoss.compute(bg, cfg);
            String ctx = Arrays.toString(sh) + " perToken=" + perToken + " mask=" + masked + " entropy=" + entropy + " "
                    + cfg.aggregation();
            float[] sc = c.toHost(), sg = g.toHost();
            for (int k = 0; k < sc.length; k++) {
                assertEquals(sc[k], sg[k], 1e-5 * Math.max(1, Math.abs(sc[k])), ctx + " scalar " + k);
            }
            assertRel(c.dlogp(), g.dlogp(), 1e-5, ctx + " dlogp");
            if (values) {
                assertRel(c.dvalue(), g.dvalue(), 1e-5, ctx + " dvalue");
            }
            if (entropy) {
                assertRel(c.dentropy(), g.dentropy(), 1e-6, ctx + " dentropy");
            }
            assertRel(g.scalars(), PpoLoss.compute(bg, cfg).scalars(), 0, ctx + " deterministic");
        }
    }
}
