package dev.sa2va.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import dev.sa2va.losses.MaskLosses;
import dev.sa2va.metrics.MaskMetrics.Input;
import dev.sa2va.metrics.MaskMetrics.Spec;
import dev.sa2va.testing.Gpu;
import java.util.Arrays;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * CUDA mask pass (evaluate, pack/unpack, losses) against the CPU kernel, which the CPU tests check against fp64.
 * Shapes cover: one pixel, P not a multiple of 8 (scalar path), aligned rows (vector path), many blocks per sample
 * (last-block epilogue over hundreds of partials) and many samples with one block each.
 */
@Tag("gpu")
class MaskEvaluateGpuTest {
    static final Device CUDA = Devices.cuda(0);
    static final Device CPU = Devices.cpu();

    @BeforeEach
    void needGpu() {
        Gpu.require();
    }

    static Tensor binary(double pOne, long... shape) {
        return Torch.rand(ScalarType.Float, CPU, shape).lt(Torch.scalar(pOne)).to(ScalarType.Byte);
    }

    static MaskTargets onDevice(Tensor y, Tensor roi, boolean packed, int g, Device d) {
        Tensor yd = y.to(d, ScalarType.Byte);
        MaskTargets t = packed ? MaskTargets.of(BitMasks.pack(yd, "y")) : MaskTargets.of(yd);
        if (roi != null) {
            Tensor rd = roi.to(d, ScalarType.Byte);
            t = packed ? t.roi(BitMasks.pack(rd, "roi")) : t.roi(rd);
        }
        return t.group(g);
    }

    /** Counts and invalid counts exact; sums and scores to 1e-5 (device sigmoid and summation order differ). */
    static void assertSame(MaskMetrics.Result cpu, MaskMetrics.Result gpu, String ctx) {
        double[] a = Torch.toDoubles(cpu.stats()), b = Torch.toDoubles(gpu.stats());
        int n = (int) cpu.stats().size(1);
        for (int k : new int[] {0, 1, 2, 3, 6, 8, 9}) {
            for (int i = 0; i < n; i++) {
                assertEquals(a[k * n + i], b[k * n + i], 0.0, ctx + " stats row " + k + " sample " + i);
            }
        }
        for (int k : new int[] {4, 5, 7}) {
            for (int i = 0; i < n; i++) {
                if (Double.isNaN(a[k * n + i])) {  // a NaN logit inside the region: NaN sums on both devices
                    assertTrue(Double.isNaN(b[k * n + i]), ctx + " sum row " + k + " sample " + i + " not NaN");
                    continue;
                }
                assertEquals(a[k * n + i], b[k * n + i], 1e-5 * Math.max(1, Math.abs(a[k * n + i])), ctx + " sum row " + k);
            }
        }
        float[] sa = Torch.toFloats(cpu.scores()), sb = Torch.toFloats(gpu.scores());
        for (int i = 0; i < sa.length; i++) {
            if (Float.isNaN(sa[i])) {
                assertTrue(Float.isNaN(sb[i]), ctx + " score " + i);
            } else {
                assertEquals(sa[i], sb[i], 1e-5 * Math.max(1, Math.abs(sa[i])), ctx + " score " + i);
            }
        }
    }

    @Test
    void evaluateMatchesCpuOverKindsLayoutsAndSizes() {
        Torch.seed(101);
        Spec base = Spec.DEFAULT.withReward(1, 0.5, 0.1, 0.2, 0.3).withTversky(0.3, 0.7);
        long[][] shapes = {{1, 1}, {4, 13}, {8, 4099}, {8, 512, 512}, {2, 1000003}, {4096, 64}};
        for (long[] shape : shapes) {
            long n = shape[0];
            long[] tshape = shape.clone();
            for (int g : new int[] {1, 4}) {
                if (n % g != 0) {
                    continue;
                }
                tshape[0] = n / g;
                Tensor y = binary(0.2, tshape), roi = binary(0.9, tshape);
                Tensor logits = Torch.randn(ScalarType.Float, CPU, shape).mul(Torch.scalar(2.0));
                Object[][] preds = {
                    {Input.LOGITS, logits, 0.3},
                    {Input.LOGITS, logits.to(ScalarType.BFloat16), 0.0},
                    {Input.LOGITS, logits.to(ScalarType.Half), -0.5},
                    {Input.PROBABILITIES, logits.sigmoid().to(ScalarType.BFloat16), 0.5},
                    {Input.BINARY, logits.gt(Torch.scalar(0.0)).to(ScalarType.Byte), 0.0},
                };
                for (Object[] pr : preds) {
                    Input kind = (Input) pr[0];
                    Tensor pc = (Tensor) pr[1];
                    Spec spec = base.withInput(kind, (Double) pr[2]);
                    Tensor pg = pc.to(CUDA, Torch.dtype(pc));
                    for (boolean packed : new boolean[] {false, true}) {
                        for (boolean useRoi : new boolean[] {false, true}) {
                            String ctx = kind + " " + Torch.dtype(pc) + " " + Arrays.toString(shape) + " g=" + g
                                    + " packed=" + packed + " roi=" + useRoi;
                            MaskMetrics.Result cpu = MaskMetrics.evaluate(pc, onDevice(y, useRoi ? roi : null, packed, g, CPU), spec);
                            MaskMetrics.Result gpu = MaskMetrics.evaluate(pg, onDevice(y, useRoi ? roi : null, packed, g, CUDA), spec);
                            assertTrue(gpu.stats().is_cuda() && gpu.scores().is_cuda(), ctx);
                            assertSame(cpu, gpu, ctx);
                            if (kind == Input.BINARY) {
                                assertSame(cpu, MaskMetrics.evaluate(BitMasks.pack(pg, "pred"),
                                        onDevice(y, useRoi ? roi : null, packed, g, CUDA), spec), ctx + " packed pred");
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * The vector path (P % 8 == 0, aligned rows) loads batches of chunks ahead of the math: chunk counts that leave a
     * partial last batch, a single chunk, many samples of few chunks; views one element (or one chunk) in, which
     * must fall back to scalar loads (prediction or target misaligned) or stay on the vector path (a whole chunk
     * in); NaN logits and a target value 2 counted as invalid on both paths.
     */
    @Test
    void vectorPathBatchTailsAndAlignment() {
        Torch.seed(104);
        long[][] sizes = {{3, 8}, {5, 8 * 257}, {7, 8 * 4096 + 8}, {1, 8 * 1000}, {300, 24}};
        for (long[] sz : sizes) {
            long n = sz[0], p = sz[1], m = n * p;
            float[] zf = Torch.toFloats(Torch.randn(ScalarType.Float, CPU, m + 8).mul(Torch.scalar(2.0)));
            zf[8 + (int) (n > 1 ? p : 0) + 3] = Float.NaN;  // sample 1 (sample 0 when n = 1) of the views below: invalid
            byte[] yb = Torch.toBytes(binary(0.3, m + 8));
            yb[8 + (int) (m - 1)] = 2;        // the last sample: an invalid target
            Tensor z = Torch.fromFloats(zf, m + 8), y = Torch.fromBytes(yb, m + 8);
            for (ScalarType st : new ScalarType[] {ScalarType.Float, ScalarType.BFloat16, ScalarType.Half}) {
                for (int zoff : new int[] {8, 1, 0}) {
                    for (int yoff : new int[] {8, 1}) {
                        Tensor zc = z.to(st).narrow(0, zoff, m).reshape(n, p), yc = y.narrow(0, yoff, m).reshape(n, p);
                        Tensor zg = z.to(CUDA, st).narrow(0, zoff, m).reshape(n, p);
                        Tensor yg = y.to(CUDA, ScalarType.Byte).narrow(0, yoff, m).reshape(n, p);
                        String ctx = st + " " + n + "x" + p + " pred offset " + zoff + " target offset " + yoff;
                        for (boolean soft : new boolean[] {false, true}) {
                            Spec spec = Spec.DEFAULT.withSoft(soft);
                            assertSame(MaskMetrics.evaluate(zc, MaskTargets.of(yc), spec),
                                    MaskMetrics.evaluate(zg, MaskTargets.of(yg), spec), ctx + " soft=" + soft);
                        }
                        // counts only: the vector path skips the sigmoid
                        assertArrayEquals(Torch.toLongs(MaskMetrics.confusion(zc, yc, 0.25)),
                                Torch.toLongs(MaskMetrics.confusion(zg, yg, 0.25)), ctx + " confusion");
                    }
                }
            }
        }
    }

    /**
     * The reward kernel's sigmoid 1 / (1 + exp(-x)) has no range fix-ups: logits far out in both tails, at the
     * float exponent limits and infinite, with a region of interest and packed targets, must give the CPU's sums.
     */
    @Test
    void rewardKernelExtremeLogits() {
        Torch.seed(105);
        float[] tails = {-1e30f, -200f, -104f, -88.8f, -87.3f, -30f, -17f, -0.0f, 0.0f, 1e-8f, 17f, 30f, 88.8f, 104f,
            1e30f, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY};
        long n = 4, p = 8 * 1031;
        float[] zf = Torch.toFloats(Torch.randn(ScalarType.Float, CPU, n * p).mul(Torch.scalar(3.0)));
        for (int i = 0; i < zf.length; i += 3) {
            zf[i] = tails[(i / 3) % tails.length];
        }
        Tensor z = Torch.fromFloats(zf, n, p), y = binary(0.4, n, p), roi = binary(0.7, n, p);
        for (ScalarType st : new ScalarType[] {ScalarType.Float, ScalarType.BFloat16, ScalarType.Half}) {
            for (boolean packed : new boolean[] {false, true}) {
                for (Tensor r : new Tensor[] {null, roi}) {
                    String ctx = st + " packed=" + packed + " roi=" + (r != null);
                    for (boolean soft : new boolean[] {false, true}) {
                        Spec spec = Spec.DEFAULT.withSoft(soft);
                        assertSame(MaskMetrics.evaluate(z.to(st), onDevice(y, r, packed, 1, CPU), spec),
                                MaskMetrics.evaluate(z.to(CUDA, st), onDevice(y, r, packed, 1, CUDA), spec),
                                ctx + " soft=" + soft);
                    }
                }
            }
            assertArrayEquals(Torch.toLongs(MaskMetrics.confusion(z.to(st), y)),
                    Torch.toLongs(MaskMetrics.confusion(z.to(CUDA, st), y.to(CUDA, ScalarType.Byte))), st + " confusion");
        }
    }

    @Test
    void softScoresInvalidValuesAndMisalignedViews() {
        Torch.seed(102);
        long n = 6, p = 4097;
        Tensor z = Torch.randn(ScalarType.Float, CPU, n * p + 1).mul(Torch.scalar(2.0));
        byte[] yb = Torch.toBytes(binary(0.3, n * p + 1));
        yb[1 + 2 * (int) p + 5] = 3; // sample 2 gets an invalid target value
        Tensor y = Torch.fromBytes(yb, n * p + 1);
        // views starting one element in: no 16-byte alignment, the scalar path
        Tensor zc = z.narrow(0, 1, n * p).reshape(n, p), yc = y.narrow(0, 1, n * p).reshape(n, p);
        Tensor zg = z.to(CUDA, ScalarType.Float).narrow(0, 1, n * p).reshape(n, p);
        Tensor yg = y.to(CUDA, ScalarType.Byte).narrow(0, 1, n * p).reshape(n, p);
        for (Spec spec : new Spec[] {Spec.DEFAULT, Spec.DEFAULT.withSoft(true).withEmpty(MaskMetrics.EmptyMode.NAN)}) {
            MaskMetrics.Result cpu = MaskMetrics.evaluate(zc, MaskTargets.of(yc), spec);
            MaskMetrics.Result gpu = MaskMetrics.evaluate(zg, MaskTargets.of(yg), spec);
            assertSame(cpu, gpu, "misaligned soft=" + spec);
            MaskMetrics.Sample[] s = gpu.toHost();
            assertEquals(1, s[2].invalidTarget());
            assertTrue(Float.isNaN(s[2].reward()) && Float.isFinite(s[1].reward()));
        }
    }

    @Test
    void repeatedCallsAreIdenticalAndCountersReset() {
        Torch.seed(103);
        // 2 samples of 4M pixels: hundreds of blocks per sample report to the last one
        Tensor z = Torch.randn(ScalarType.BFloat16, CUDA, 2, 4 << 20);
        Tensor y = Torch.rand(ScalarType.Float, CUDA, 2, 4 << 20).lt(Torch.scalar(0.1)).to(ScalarType.Byte);
        MaskTargets t = MaskTargets.of(y);
        double[] first = Torch.toDoubles(MaskMetrics.evaluate(z, t, Spec.DEFAULT).stats());
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(first, Torch.toDoubles(MaskMetrics.evaluate(z, t, Spec.DEFAULT).stats()), "call " + i);
        }
        // a different sample count in between (other counters), then the first again
        MaskMetrics.evaluate(z.narrow(0, 0, 1), MaskTargets.of(y.narrow(0, 0, 1)), Spec.DEFAULT);
        assertArrayEquals(first, Torch.toDoubles(MaskMetrics.evaluate(z, t, Spec.DEFAULT).stats()));
        long[] conf = Torch.toLongs(MaskMetrics.confusion(z, y));
        for (int i = 0; i < 2; i++) {
            for (int k = 0; k < 4; k++) {
                assertEquals((long) first[k * 2 + i], conf[i * 4 + k], "sample " + i + " count " + k);
            }
        }
    }

    @Test
    void packUnpackAndInvalidCountOnGpu() {
        Torch.seed(104);
        for (long[] shape : new long[][] {{3, 1001}, {4, 256, 256}, {1, 1}}) {
            Tensor m = binary(0.4, shape);
            BitMasks c = BitMasks.pack(m, "m");
            BitMasks g = BitMasks.pack(m.to(CUDA, ScalarType.Byte), "m");
            assertArrayEquals(Torch.toBytes(c.bits()), Torch.toBytes(g.bits()), Arrays.toString(shape));
            assertArrayEquals(Torch.toBytes(m), Torch.toBytes(g.unpack()), Arrays.toString(shape));
        }
        Tensor bad = Torch.fromBytes(new byte[] {0, 1, 5, 1, 9, 0, 0, 1, 1}, 1, 9).to(CUDA, ScalarType.Byte);
        MaskMetricsTest.assertMessage(() -> BitMasks.pack(bad, "truth"), "truth: 2 value(s) other than 0 and 1");
    }

    @Test
    void lossesAndGradientsMatchCpu() {
        Torch.seed(105);
        MaskLosses.Spec spec = MaskLosses.Spec.DEFAULT.withWeights(1, 0.5, 0.5).withPosWeight(2);
        for (long[] shape : new long[][] {{4, 4099}, {8, 256, 256}}) {
            for (ScalarType st : new ScalarType[] {ScalarType.Float, ScalarType.BFloat16}) {
                Tensor z = Torch.randn(ScalarType.Float, CPU, shape).to(st);
                long[] ys = shape.clone();
                ys[0] /= 2;
                Tensor y = binary(0.2, ys), roi = binary(0.9, ys);
                MaskLosses.Result c = MaskLosses.compute(z, MaskTargets.of(y).roi(roi).group(2), spec, true);
                MaskLosses.Result g = MaskLosses.compute(z.to(CUDA, st),
                        onDevice(y, roi, true, 2, CUDA), spec, true);
                String ctx = st + " " + Arrays.toString(shape);
                assertTrue(Torch.relError(g.losses(), c.losses()) < 1e-5, ctx + " losses");
                assertTrue(Torch.relError(g.grad(), c.grad()) < (st == ScalarType.Float ? 1e-5 : 1e-2), ctx + " grad");
            }
        }
    }
}
