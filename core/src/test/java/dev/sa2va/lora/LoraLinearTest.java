package dev.sa2va.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The LoRA layer on the CPU (C++ kernels + libtorch GEMM) against a float64 libtorch-autograd reference, finite
 * differences, and its documented edge cases and errors.
 */
class LoraLinearTest {
    static final Device CPU = Devices.cpu();
    static final ScalarType[] DTYPES = {ScalarType.Float, ScalarType.BFloat16, ScalarType.Half};

    PointerScope scope;

    @BeforeEach
    void openScope() {
        scope = new PointerScope();
        Torch.seed(42);
    }

    @AfterEach
    void closeScope() {
        scope.close();
    }

    /** Relative Frobenius tolerance vs float64 by dtype (bf16 goal of issue 3: 1e-2; fp32: 1e-5). */
    static double tol(ScalarType st) {
        return st == ScalarType.Float ? 1e-5 : st == ScalarType.Double ? 1e-12 : 1e-2;
    }

    /** A layer with non-zero, well-scaled random A and B (PEFT's init has B = 0, which would hide bugs in B). */
    static LoraLinear randomLayer(Tensor w, Tensor bias, int r, double alpha, double p, long seed, ScalarType st) {
        Device d = w.device();
        Tensor a = Torch.randn(ScalarType.Float, d, r, w.size(1)).mul(Torch.scalar(1 / Math.sqrt(w.size(1))));
        Tensor b = Torch.randn(ScalarType.Float, d, w.size(0), r).mul(Torch.scalar(1 / Math.sqrt(r)));
        return LoraLinear.builder(w).bias(bias).weights(a, b).alpha(alpha).dropout(p).seed(seed).build();
    }

    static Tensor weight(long dOut, long dIn, ScalarType st, Device d) {
        return Torch.randn(ScalarType.Float, d, dOut, dIn).mul(Torch.scalar(1 / Math.sqrt(dIn))).to(st);
    }

    static Tensor keepMask(Tensor x, double p, LoraLinear l, long offset) {
        return p == 0 ? null : LoraOps.dropoutMask(x.numel(), p, l.seed(), offset);
    }

    // ---- correctness against float64 --------------------------------------------------------------------------

    @Test
    void forwardAndBackwardMatchFloat64AutogradOnOddShapes() {
        long[][] shapes = {{1, 1, 1, 1}, {3, 5, 7, 2}, {17, 33, 9, 16}, {65, 40, 72, 8}, {7, 24, 16, 24}, {4, 96, 80, 64}};
        for (ScalarType st : DTYPES) {
            for (long[] s : shapes) {
                for (double p : new double[] {0.0, 0.25}) {
                    long rows = s[0], dIn = s[1], dOut = s[2];
                    int r = (int) s[3];
                    Tensor w = weight(dOut, dIn, st, CPU);
                    Tensor bias = rows % 2 == 1 ? Torch.randn(ScalarType.Float, CPU, dOut).to(st) : null;
                    LoraLinear l = randomLayer(w, bias, r, 2.0 * r, p, 7 + rows, st);
                    Tensor x = Torch.randn(ScalarType.Float, CPU, rows, dIn).to(st);
                    Tensor dy = Torch.randn(ScalarType.Float, CPU, rows, dOut).to(st);
                    LoraLinear.Saved saved = l.forwardTrain(x);
                    Tensor dx = l.backward(saved, dy);
                    LoraReference.Result ref = LoraReference.compute(x, w, bias, l.loraA().to(st), l.loraB().to(st),
                            l.scaling(), keepMask(x, p, l, saved.dropoutOffset()), p, dy);
                    String what = st + " " + java.util.Arrays.toString(s) + " p=" + p;
                    assertTrue(Torch.relError(saved.output(), ref.y()) <= tol(st), "y " + what + ": " + Torch.relError(saved.output(), ref.y()));
                    assertTrue(Torch.relError(dx, ref.dx()) <= tol(st), "dx " + what + ": " + Torch.relError(dx, ref.dx()));
                    assertTrue(Torch.relError(l.gradA(), ref.dA()) <= tol(st), "dA " + what + ": " + Torch.relError(l.gradA(), ref.dA()));
                    assertTrue(Torch.relError(l.gradB(), ref.dB()) <= tol(st), "dB " + what + ": " + Torch.relError(l.gradB(), ref.dB()));
                }
            }
        }
    }

    @Test
    void threeDimensionalInputsAndRank256() {
        Tensor w = weight(40, 24, ScalarType.Float, CPU);
        LoraLinear l = randomLayer(w, null, 256, 16, 0.1, 3, ScalarType.Float);
        Tensor x = Torch.randn(ScalarType.Float, CPU, 2, 5, 24);
        Tensor dy = Torch.randn(ScalarType.Float, CPU, 2, 5, 40);
        LoraLinear.Saved s = l.forwardTrain(x);
        assertArrayEquals(new long[] {2, 5, 40}, dev.sa2va.core.TensorCheck.shapeOf(s.output()));
        Tensor dx = l.backward(s, dy);
        assertArrayEquals(new long[] {2, 5, 24}, dev.sa2va.core.TensorCheck.shapeOf(dx));
        LoraReference.Result ref = LoraReference.compute(x, w, null, l.loraA(), l.loraB(), l.scaling(),
                keepMask(x, 0.1, l, s.dropoutOffset()), 0.1, dy);
        assertTrue(Torch.relError(s.output(), ref.y()) <= 1e-5);
        assertTrue(Torch.relError(dx, ref.dx()) <= 1e-5);
        assertTrue(Torch.relError(l.gradA(), ref.dA()) <= 1e-5);
        assertTrue(Torch.relError(l.gradB(), ref.dB()) <= 1e-5);
    }

    @Test
    void finiteDifferencesInFloat64() {
        // L = Σ y ⊙ G; central differences with h = 1e-6 of a float64 layer, dropout on (the mask is fixed by seed and
        // offset, so L is a smooth function of x, A and B)
        long rows = 6, dIn = 9, dOut = 7;
        int r = 3;
        double p = 0.3;
        Tensor w = weight(dOut, dIn, ScalarType.Double, CPU);
        Tensor bias = Torch.randn(ScalarType.Double, CPU, dOut);
        LoraLinear l = randomLayer(w, bias, r, 5, p, 11, ScalarType.Double);
        Tensor x = Torch.randn(ScalarType.Double, CPU, rows, dIn);
        Tensor g = Torch.randn(ScalarType.Double, CPU, rows, dOut);
        LoraLinear.Saved s = l.forwardTrain(x);
        Tensor dx = l.backward(s, g);
        long offset = s.dropoutOffset();
        double h = 1e-6;
        double worst = 0;
        for (Tensor[] pair : new Tensor[][] {{x, dx}, {l.loraA(), l.gradA()}, {l.loraB(), l.gradB()}}) {
            Tensor param = pair[0];
            double[] analytic = Torch.toDoubles(pair[1]);
            for (int i = 0; i < param.numel(); i++) {
                Tensor e = param.view(-1).narrow(0, i, 1);
                double orig = e.item().toDouble();
                e.fill_(Torch.scalar(orig + h));
                double lp = loss(l, x, g, offset);
                e.fill_(Torch.scalar(orig - h));
                double lm = loss(l, x, g, offset);
                e.fill_(Torch.scalar(orig));
                double numeric = (lp - lm) / (2 * h);
                double err = Math.abs(numeric - analytic[i]) / Math.max(1, Math.abs(numeric));
                worst = Math.max(worst, err);
            }
        }
        assertTrue(worst < 1e-7, "worst relative finite-difference error " + worst);
    }

    /** Σ y ⊙ g with the layer's current A, B and the dropout stream `offset`. */
    private static double loss(LoraLinear l, Tensor x, Tensor g, long offset) {
        LoraOps.Forward f = LoraOps.forward(x, l.weight(), l.bias(), l.loraA(), l.loraB(), l.scaling(), l.dropout(),
                l.seed(), offset, false);
        return f.y().mul(g).sum().item().toDouble();
    }

    // ---- dropout -----------------------------------------------------------------------------------------------

    @Test
    void dropoutIsReproducibleFromSeedAndOffsetAndHasTheRequestedRate() {
        Tensor w = weight(32, 64, ScalarType.Float, CPU);
        Tensor x = Torch.randn(ScalarType.Float, CPU, 50, 64);
        LoraLinear l1 = randomLayer(w, null, 8, 8, 0.3, 1234, ScalarType.Float);
        Tensor a = l1.loraA(), b = l1.loraB();
        LoraLinear l2 = LoraLinear.builder(w).weights(a, b).alpha(8).dropout(0.3).seed(1234).build();
        LoraLinear l3 = LoraLinear.builder(w).weights(a, b).alpha(8).dropout(0.3).seed(1235).build();
        Tensor y1 = l1.forwardTrain(x).output(), y2 = l2.forwardTrain(x).output(), y3 = l3.forwardTrain(x).output();
        assertTrue(torch.equal(y1, y2), "same seed and offset must give the same output");
        assertFalse(torch.equal(y1, y3), "another seed must give another mask");
        Tensor y1b = l1.forwardTrain(x).output();  // next offset
        assertFalse(torch.equal(y1, y1b), "each training step must draw a new mask");
        assertFalse(torch.equal(y1, l1.forward(x)), "inference must not drop");
        // the keep rate of the documented mask (2e5 draws: 5 sigma of the binomial is ~0.005)
        double kept = LoraOps.dropoutMask(200_000, 0.3, 99, 5).to(ScalarType.Double).mean().item().toDouble();
        assertEquals(0.7, kept, 0.005);
        assertEquals(65536.0 / (65536 - Math.rint(0.3 * 65536)), LoraOps.dropoutScale(0.3), 0);
    }

    // ---- B = 0, merge ------------------------------------------------------------------------------------------

    @Test
    void freshAdapterGivesExactlyTheBaseOutput() {
        for (ScalarType st : DTYPES) {
            Tensor w = weight(48, 40, st, CPU);
            Tensor bias = Torch.randn(ScalarType.Float, CPU, 48).to(st);
            Tensor x = Torch.randn(ScalarType.Float, CPU, 9, 40).to(st);
            LoraLinear l = LoraLinear.builder(w).bias(bias).rank(8).alpha(16).build();  // PEFT init: B = 0
            assertEquals(0.0, l.loraB().abs().max().item().toDouble(), 0.0);
            double bound = 1 / Math.sqrt(40);
            assertTrue(l.loraA().abs().max().item().toDouble() <= bound, "A ~ U(-1/sqrt(d_in), 1/sqrt(d_in))");
            Tensor y = l.forward(x);
            // the base computed the way the layer computes it (GEMM accumulating onto the bias rows): bit-identical
            Tensor base = Torch.zeros(st, CPU, 9, 48).add_(bias).addmm_(x, w.t());
            assertTrue(torch.equal(y, base), st + ": B = 0 must leave exactly the base output");
            // and the same as torch's own linear layer up to the order of the GEMM's additions
            assertTrue(Torch.relError(y, torch.linear(x, w, bias)) <= (st == ScalarType.Float ? 1e-6 : 4e-3), st.toString());
        }
    }

    @Test
    void mergeThenForwardEqualsUnmergedAndUnmergeRestores() {
        for (ScalarType st : DTYPES) {
            Tensor w = weight(36, 52, st, CPU);
            Tensor w0 = w.clone();
            Tensor x = Torch.randn(ScalarType.Float, CPU, 11, 52).to(st);
            LoraLinear l = randomLayer(w, null, 12, 24, 0.0, 0, st);
            Tensor unmerged = l.forward(x);
            l.merge();
            assertTrue(l.isMerged());
            Tensor merged = l.forward(x);
            assertTrue(Torch.relError(merged, unmerged) <= tol(st), st + " merged vs unmerged: " + Torch.relError(merged, unmerged));
            LoraReference.Result ref = LoraReference.compute(x, w0, null, l.loraA(), l.loraB(), l.scaling(), null, 0, null);
            assertTrue(Torch.relError(merged, ref.y()) <= tol(st));
            assertThrows(IllegalStateException.class, () -> l.forwardTrain(x));
            l.unmerge();
            // one rounding of W + sBA back to the dtype: at most ~1 ulp of the merged value per element
            double back = Torch.relError(w, w0);
            assertTrue(back <= (st == ScalarType.Float ? 1e-6 : 1e-2), st + " unmerge: " + back);
        }
    }

    // ---- multi-adapter -----------------------------------------------------------------------------------------

    @Test
    void multiAdapterBatchMatchesEachAdapterAlone() {
        for (ScalarType st : new ScalarType[] {ScalarType.Float, ScalarType.BFloat16}) {
            Tensor w = weight(30, 20, st, CPU);
            Tensor bias = Torch.randn(ScalarType.Float, CPU, 30).to(st);
            List<LoraLinear> adapters = List.of(randomLayer(w, bias, 4, 8, 0, 0, st), randomLayer(w, bias, 16, 4, 0, 0, st),
                    randomLayer(w, bias, 7, 21, 0, 0, st));
            try (MultiLoraLinear multi = MultiLoraLinear.of(adapters)) {
                long rows = 70;
                Tensor x = Torch.randn(ScalarType.Float, CPU, rows, 20).to(st);
                long[] idx = new long[(int) rows];
                for (int t = 0; t < rows; t++) {
                    idx[t] = t < 30 ? 0 : t < 50 ? 2 : t % 4 - 1;  // grouped, then mixed with -1 (base only)
                }
                Tensor y = multi.forward(x, Torch.fromLongs(idx, rows));
                for (int t = 0; t < rows; t++) {
                    Tensor row = x.narrow(0, t, 1);
                    Tensor want = idx[t] < 0 ? torch.linear(row, w, bias) : adapters.get((int) idx[t]).forward(row);
                    assertTrue(Torch.relError(y.narrow(0, t, 1), want) <= tol(st), st + " row " + t + " adapter " + idx[t]);
                }
                assertThrows(IllegalArgumentException.class, () -> multi.forward(x, Torch.fromLongs(new long[] {3}, 1)));
                Tensor bad = Torch.fromLongs(idx, rows).clone();
                bad.narrow(0, 5, 1).fill_(Torch.scalar(3L));
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> multi.forward(x, bad));
                assertTrue(e.getMessage().startsWith("adapter_index: values must be in [-1, 2]"), e.getMessage());
            }
        }
    }

    // ---- training loop, optimizer integration -------------------------------------------------------------------

    @Test
    void gradientsDriveAnOptimizerToTheTargetUpdate() {
        // fit y = x·(W + ΔW)ᵀ with a rank-2 ΔW: plain gradient descent on the masters must drive the loss down
        Tensor w = weight(16, 12, ScalarType.Float, CPU);
        Tensor delta = Torch.randn(ScalarType.Float, CPU, 16, 2).matmul(Torch.randn(ScalarType.Float, CPU, 2, 12))
                .mul(Torch.scalar(0.3));
        Tensor x = Torch.randn(ScalarType.Float, CPU, 64, 12);
        Tensor target = torch.linear(x, w.add(delta));
        LoraLinear l = LoraLinear.builder(w).rank(2).alpha(2).seed(1).build();
        double first = 0, last = 0;
        for (int step = 0; step < 300; step++) {
            try (PointerScope s = new PointerScope()) {
                l.zeroGrad();
                LoraLinear.Saved saved = l.forwardTrain(x);
                Tensor diff = saved.output().sub(target);
                double loss = diff.pow(Torch.scalar(2)).mean().item().toDouble();
                l.backward(saved, diff.mul(Torch.scalar(2.0 / diff.numel())));
                if (step == 0) {
                    first = loss;
                }
                last = loss;
                // the gradients are attached to the masters, where a libtorch optimizer would read them
                for (Tensor p : l.parameters()) {
                    p.sub_(p.grad().mul(Torch.scalar(0.5)));
                }
            }
        }
        assertTrue(last < first * 1e-2, "loss " + first + " -> " + last);
        assertTrue(torch.equal(l.loraA().grad(), l.gradA()), "gradA is the master's grad");
    }

    @Test
    void inPlaceUpdateBetweenForwardAndBackwardIsRefused() {
        Tensor w = weight(8, 8, ScalarType.Float, CPU);
        LoraLinear l = randomLayer(w, null, 2, 2, 0, 0, ScalarType.Float);
        Tensor x = Torch.randn(ScalarType.Float, CPU, 3, 8);
        LoraLinear.Saved s = l.forwardTrain(x);
        l.loraA().add_(Torch.scalar(1.0));
        assertThrows(IllegalStateException.class, () -> l.backward(s, Torch.randn(ScalarType.Float, CPU, 3, 8)));
    }

    @Test
    void sixteenBitLayersSeeMasterUpdates() {
        Tensor w = weight(8, 8, ScalarType.BFloat16, CPU);
        LoraLinear l = randomLayer(w, null, 2, 2, 0, 0, ScalarType.BFloat16);
        Tensor x = Torch.randn(ScalarType.Float, CPU, 3, 8).to(ScalarType.BFloat16);
        Tensor before = l.forward(x);
        l.loraB().mul_(Torch.scalar(3.0));
        Tensor after = l.forward(x);
        LoraReference.Result ref = LoraReference.compute(x, w, null, l.loraA().to(ScalarType.BFloat16),
                l.loraB().to(ScalarType.BFloat16), l.scaling(), null, 0, null);
        assertTrue(Torch.relError(after, ref.y()) <= 1e-2);
        assertFalse(torch.equal(before, after));
    }

    // ---- NaN -----------------------------------------------------------------------------------------------------

    @Test
    void nanInAnInputRowStaysInThatRow() {
        Tensor w = weight(10, 6, ScalarType.Float, CPU);
        LoraLinear l = randomLayer(w, null, 3, 3, 0, 0, ScalarType.Float);
        Tensor x = Torch.randn(ScalarType.Float, CPU, 4, 6);
        Tensor clean = l.forward(x);
        x.narrow(0, 2, 1).narrow(1, 3, 1).fill_(Torch.scalar(Double.NaN));
        Tensor y = l.forward(x);
        assertTrue(y.narrow(0, 2, 1).isnan().all().item().toBool(), "the NaN row is NaN");
        assertTrue(torch.equal(y.narrow(0, 0, 2), clean.narrow(0, 0, 2)), "other rows are untouched");
        assertTrue(torch.equal(y.narrow(0, 3, 1), clean.narrow(0, 3, 1)), "other rows are untouched");
    }

    // ---- bad input ---------------------------------------------------------------------------------------------

    @Test
    void badArgumentsNameTheArgument() {
        Tensor w = weight(8, 6, ScalarType.Float, CPU);
        LoraLinear l = randomLayer(w, null, 2, 2, 0, 0, ScalarType.Float);
        expect("x: last dimension is 5 but the layer has d_in = 6", () -> l.forward(Torch.randn(ScalarType.Float, CPU, 3, 5)));
        expect("x: dtype bfloat16 does not match the layer's float32",
                () -> l.forward(Torch.randn(ScalarType.Float, CPU, 3, 6).to(ScalarType.BFloat16)));
        expect("x: must be contiguous", () -> l.forward(Torch.randn(ScalarType.Float, CPU, 6, 3).t()));
        expect("x: is empty", () -> l.forward(Torch.randn(ScalarType.Float, CPU, 0, 6)));
        expect("rank: must be in [1, 256], got 0", () -> LoraLinear.builder(w).rank(0).build());
        expect("rank: must be in [1, 256], got 257", () -> LoraLinear.builder(w).rank(257).build());
        expect("dropout: p must be in [0, 1), got 1.0", () -> LoraLinear.builder(w).dropout(1.0).build());
        expect("alpha: must be finite, got NaN", () -> LoraLinear.builder(w).alpha(Double.NaN).build());
        expect("bias: expected shape [8], got [6]", () -> LoraLinear.builder(w).bias(Torch.zeros(ScalarType.Float, CPU, 6)).build());
        expect("lora_A: expected shape [2, 6], got [2, 5]", () -> LoraLinear.builder(w)
                .weights(Torch.zeros(ScalarType.Float, CPU, 2, 5), Torch.zeros(ScalarType.Float, CPU, 8, 2)).build());
        expect("weight: expected 2 dimensions", () -> LoraLinear.builder(Torch.zeros(ScalarType.Float, CPU, 8)).build());
        expect("weight: dtype int64 not supported", () -> LoraLinear.builder(Torch.zeros(ScalarType.Long, CPU, 2, 2)).build());
        Tensor x = Torch.randn(ScalarType.Float, CPU, 3, 6);
        LoraLinear.Saved s = l.forwardTrain(x);
        expect("dY: shape [3, 7] does not match the output shape [3, 8]", () -> l.backward(s, Torch.randn(ScalarType.Float, CPU, 3, 7)));
        LoraLinear other = randomLayer(w, null, 2, 2, 0, 0, ScalarType.Float);
        expect("saved: not from a forwardTrain of this layer", () -> other.backward(s, Torch.randn(ScalarType.Float, CPU, 3, 8)));
        expect("scale: must be finite", () -> LoraOps.forward(x, w, null, l.loraA(), l.loraB(), Double.POSITIVE_INFINITY, 0, 0, 0, false));
        expect("lora_B: dtype bfloat16 not supported, expected float32", () -> LoraOps.forward(x, w, null, l.loraA(),
                l.loraB().to(ScalarType.BFloat16), 1, 0, 0, 0, false));
    }

    @Test
    void rankAboveMinDimensionIsAllowedButWarned() {
        List<LogRecord> records = new ArrayList<>();
        Handler h = new Handler() {
            @Override
            public void publish(LogRecord r) {
                records.add(r);
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        Logger jul = Logger.getLogger(LoraLinear.class.getName());
        jul.addHandler(h);
        try {
            Tensor w = weight(4, 6, ScalarType.Float, CPU);
            LoraLinear l = LoraLinear.builder(w).rank(5).build();
            assertEquals(5, l.rank());
            assertTrue(records.stream().anyMatch(r -> r.getLevel() == java.util.logging.Level.WARNING),
                    "rank 5 > min(6, 4) must log a warning");
            Tensor x = Torch.randn(ScalarType.Float, CPU, 2, 6);
            assertTrue(Torch.relError(l.forward(x), torch.linear(x, w)) < 1e-6);
        } finally {
            jul.removeHandler(h);
        }
    }

    static void expect(String messageStart, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().startsWith(messageStart), "expected '" + messageStart + "...', got '" + e.getMessage() + "'");
        assertNotEquals(null, e.getMessage());
    }
}
