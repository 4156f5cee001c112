package dev.sa2va.rl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.sa2va.core.Devices;
import dev.sa2va.core.Torch;
import java.util.Random;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

/** GRPO / RLOO advantages (CPU kernel) against TRL's formulas written here in fp64. */
class GroupAdvantagesTest {

    /** TRL GRPOTrainer (_generate_and_score_completions) and RLOOTrainer, in double. */
    static double[][] reference(float[] r, int g, GroupAdvantages.Mode mode, double eps) {
        int m = r.length, b = m / g;
        double bm = 0, bss = 0;
        for (float x : r) {
            bm += x;
        }
        bm /= m;
        for (float x : r) {
            bss += (x - bm) * (x - bm);
        }
        double batchStd = Math.sqrt(bss / (m - 1));
        double[] adv = new double[m], mean = new double[b], std = new double[b];
        for (int k = 0; k < b; k++) {
            double s = 0, ss = 0;
            for (int j = 0; j < g; j++) {
                s += r[k * g + j];
            }
            mean[k] = s / g;
            for (int j = 0; j < g; j++) {
                ss += (r[k * g + j] - mean[k]) * (r[k * g + j] - mean[k]);
            }
            std[k] = mode == GroupAdvantages.Mode.GRPO_BATCH_STD ? batchStd : Math.sqrt(ss / (g - 1));
            for (int j = 0; j < g; j++) {
                double x = r[k * g + j];
                adv[k * g + j] = switch (mode) {
                    case RLOO -> x - (s - x) / (g - 1);
                    case MEAN_ONLY -> x - mean[k];
                    default -> (x - mean[k]) / (std[k] + eps);
                };
            }
        }
        return new double[][] {adv, mean, std};
    }

    @Test
    void everyModeMatchesTheReference() {
        Random rnd = new Random(51);
        for (int g : new int[] {2, 5, 8, 40}) {
            for (int b : new int[] {1, 3, 17}) {
                float[] r = new float[b * g];
                for (int i = 0; i < r.length; i++) {
                    r[i] = (float) (rnd.nextGaussian() * 0.3 + 0.5);
                }
                // a group whose samples all scored the same: zero advantage, zero std
                if (b > 1) {
                    java.util.Arrays.fill(r, g, 2 * g, 0.75f);
                }
                for (GroupAdvantages.Mode mode : GroupAdvantages.Mode.values()) {
                    if (mode == GroupAdvantages.Mode.GRPO_BATCH_STD && b * g < 2) {
                        continue;
                    }
                    Tensor rt = Torch.fromFloats(r, b * g);
                    GroupAdvantages.Result res = GroupAdvantages.compute(rt, g, mode, 1e-4);
                    double[][] ref = reference(r, g, mode, 1e-4);
                    float[] adv = Torch.toFloats(res.advantages()), st = Torch.toFloats(res.groupStats());
                    String ctx = mode + " G=" + g + " B=" + b;
                    for (int i = 0; i < r.length; i++) {
                        assertEquals(ref[0][i], adv[i], 1e-5 * Math.max(1, Math.abs(ref[0][i])), ctx + " element " + i);
                    }
                    for (int k = 0; k < b; k++) {
                        assertEquals(ref[1][k], st[k], 1e-6, ctx + " mean " + k);
                        assertEquals(ref[2][k], st[b + k], 1e-6, ctx + " std " + k);
                    }
                    if (b > 1 && mode != GroupAdvantages.Mode.GRPO_BATCH_STD) {
                        for (int j = 0; j < g; j++) {
                            assertEquals(0f, adv[g + j], ctx + ": a zero-std group has no advantage");
                        }
                        assertEquals(1.0 / b, Torch.toFloats(res.fracZeroStd())[0], 1e-6);
                    }
                    // [B, G] input gives the same numbers
                    assertArrayEquals(adv, Torch.toFloats(GroupAdvantages.compute(rt.reshape(b, g), g, mode, 1e-4)
                            .advantages()));
                }
            }
        }
    }

    @Test
    void badArguments() {
        Tensor r = Torch.randn(ScalarType.Float, Devices.cpu(), 12);
        GaeTest.assertMessage(() -> GroupAdvantages.grpo(r, 1), "groupSize: must be >= 2");
        GaeTest.assertMessage(() -> GroupAdvantages.grpo(r, 5), "rewards: 12 rewards are not a whole number of groups of 5");
        GaeTest.assertMessage(() -> GroupAdvantages.grpo(r.reshape(3, 4), 3), "rewards: expected [B * G] or [B, 3]");
        GaeTest.assertMessage(() -> GroupAdvantages.grpo(r.to(ScalarType.Double), 4), "rewards: dtype float64 not supported");
        GaeTest.assertMessage(() -> GroupAdvantages.compute(r, 4, GroupAdvantages.Mode.GRPO, -1), "eps: must be finite and >= 0");
    }
}
