package dev.sa2va.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Torch;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The synthetic fundus generator: reproducibility, exactness of the ground truth, Murray's law, the knobs. */
class SyntheticFundusTest {
    static final SyntheticFundus.Config SMALL = SyntheticFundus.Config.defaults().withSize(160, 144);

    @Test
    void sameSeedSameBytesOtherSeedOtherImage() {
        SyntheticFundus.Fundus a = SyntheticFundus.generate(SMALL, 42), b = SyntheticFundus.generate(SMALL, 42);
        assertArrayEquals(Torch.toBytes(a.image()), Torch.toBytes(b.image()));
        assertArrayEquals(Torch.toBytes(a.vessels()), Torch.toBytes(b.vessels()));
        assertArrayEquals(Torch.toBytes(a.fov()), Torch.toBytes(b.fov()));
        SyntheticFundus.Fundus c = SyntheticFundus.generate(SMALL, 43);
        assertFalse(Arrays.equals(Torch.toBytes(a.vessels()), Torch.toBytes(c.vessels())));
        assertEquals(144, a.image().size(0));
        assertEquals(160, a.image().size(1));
        assertEquals(3, a.image().size(2));
    }

    @Test
    void sourceSampleDoesNotDependOnCount() throws Exception {
        SyntheticSource three = new SyntheticSource(SMALL, 7, 3), ten = new SyntheticSource(SMALL, 7, 10);
        Sample x = three.load(2), y = ten.load(2);
        assertEquals("synthetic_0003", x.id());
        assertArrayEquals(Torch.toBytes(x.image()), Torch.toBytes(y.image()));
        assertArrayEquals(Torch.toBytes(x.mask()), Torch.toBytes(y.mask()));
        assertFalse(Arrays.equals(Torch.toBytes(three.load(0).mask()), Torch.toBytes(x.mask())));
        assertEquals(SyntheticSource.TEXT, x.text());
        assertThrows(IndexOutOfBoundsException.class, () -> three.load(3));
    }

    /** The mask is exactly "pixel centre within the local radius of some segment", recomputed by brute force. */
    @Test
    void groundTruthIsExactlyThePixelsInsideTheVessels() {
        long seed = 5;
        SyntheticFundus.Config c = SMALL.withThinVessels(1.0);
        SyntheticFundus.Scene scene = SyntheticFundus.scene(c, seed);
        byte[] got = Torch.toBytes(SyntheticFundus.generate(c, seed).vessels());
        int w = c.width(), h = c.height();
        byte[] want = new byte[w * h];
        for (VesselTree.Segment s : scene.segments()) {
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    double px = x + 0.5, py = y + 0.5;
                    double dx = s.bx() - s.ax(), dy = s.by() - s.ay();
                    double len2 = dx * dx + dy * dy;
                    double t = len2 == 0 ? 0 : Math.max(0, Math.min(1, ((px - s.ax()) * dx + (py - s.ay()) * dy) / len2));
                    double d = Math.hypot(s.ax() + t * dx - px, s.ay() + t * dy - py);
                    if (d <= s.ra() + t * (s.rb() - s.ra())) {
                        want[y * w + x] = 1;
                    }
                }
            }
        }
        assertTrue(scene.segments().size() > 100, "a tree was grown: " + scene.segments().size());
        int differ = 0;
        for (int i = 0; i < want.length; i++) {
            differ += want[i] != got[i] ? 1 : 0;
        }
        // math.hypot vs sqrt of the sum of squares may flip a pixel exactly on the boundary, nothing more
        assertTrue(differ <= 2, differ + " pixels differ from the brute-force mask");
        // and every vessel lies inside the field of view
        byte[] fov = Torch.toBytes(SyntheticFundus.generate(c, seed).fov());
        for (int i = 0; i < got.length; i++) {
            assertTrue(got[i] == 0 || fov[i] == 1, "vessel pixel outside the FOV at " + i);
        }
    }

    @Test
    void smallImagesStillHaveVessels() {
        for (int size : new int[] {32, 64, 96}) {
            SyntheticFundus.Fundus f = SyntheticFundus.generate(SMALL.withSize(size, size), 1);
            assertTrue(f.stats().vesselFraction() > 0.03, size + " px: vessel fraction " + f.stats().vesselFraction());
        }
    }

    @Test
    void branchesFollowMurraysLaw() {
        SyntheticFundus.Config c = SyntheticFundus.Config.defaults().withSize(400, 400);
        List<VesselTree.Segment> segs = SyntheticFundus.scene(c, 11).segments();
        Map<String, List<VesselTree.Segment>> starts = new HashMap<>();
        Map<String, VesselTree.Segment> ends = new HashMap<>();
        for (VesselTree.Segment s : segs) {
            starts.computeIfAbsent(s.ax() + "," + s.ay(), k -> new ArrayList<>()).add(s);
            ends.put(s.bx() + "," + s.by(), s);
        }
        int branchPoints = 0;
        for (Map.Entry<String, List<VesselTree.Segment>> e : starts.entrySet()) {
            VesselTree.Segment parent = ends.get(e.getKey());
            if (e.getValue().size() == 2 && parent != null) {
                double r0 = parent.rb(), r1 = e.getValue().get(0).ra(), r2 = e.getValue().get(1).ra();
                assertEquals(r0 * r0 * r0, r1 * r1 * r1 + r2 * r2 * r2, 1e-9 * r0 * r0 * r0, "Murray at " + e.getKey());
                branchPoints++;
            }
        }
        assertTrue(branchPoints > 20, "branch points found: " + branchPoints);
    }

    @Test
    void chordIntegralMatchesNumericalIntegration() {
        for (double r : new double[] {0.3, 0.5, 1.0, 2.7, 6.0}) {
            for (double d : new double[] {0, 0.2, 0.49, 0.5, 1.1, r, r + 0.3, r + 0.6}) {
                // midpoint rule over [d - 1/2, d + 1/2] of 2 sqrt(r^2 - u^2)
                int n = 200_000;
                double sum = 0;
                for (int i = 0; i < n; i++) {
                    double u = d - 0.5 + (i + 0.5) / n;
                    sum += 2 * Math.sqrt(Math.max(0, r * r - u * u)) / n;
                }
                assertEquals(sum, SyntheticFundus.chordOverPixel(d, r), 1e-5, "r " + r + " d " + d);
            }
        }
    }

    @Test
    void vesselsAreDarkerThanTheirSurroundings() {
        double plain = localContrast(SyntheticFundus.generate(SMALL.withNoise(0), 3));
        assertTrue(plain < 0.95, "vessel green / local background green = " + plain);
        // and more so with more contrast
        double strong = localContrast(SyntheticFundus.generate(SMALL.withNoise(0).withContrast(3), 3));
        assertTrue(strong < plain - 0.05, strong + " vs " + plain);
    }

    /**
     * Mean over vessel pixels of green / (mean green of the non-vessel FOV pixels in the 9x9 window around it): a
     * local comparison, since the optic disc is bright and the periphery dark.
     */
    private static double localContrast(SyntheticFundus.Fundus f) {
        byte[] img = Torch.toBytes(f.image()), v = Torch.toBytes(f.vessels()), fov = Torch.toBytes(f.fov());
        int w = (int) f.image().size(1), h = (int) f.image().size(0);
        double sum = 0;
        int n = 0;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                if (v[y * w + x] == 0) {
                    continue;
                }
                double bg = 0;
                int nb = 0;
                for (int yy = Math.max(0, y - 4); yy <= Math.min(h - 1, y + 4); yy++) {
                    for (int xx = Math.max(0, x - 4); xx <= Math.min(w - 1, x + 4); xx++) {
                        int j = yy * w + xx;
                        if (v[j] == 0 && fov[j] != 0) {
                            bg += img[3 * j + 1] & 0xff;
                            nb++;
                        }
                    }
                }
                if (nb > 0) {
                    sum += (img[3 * (y * w + x) + 1] & 0xff) / (bg / nb);
                    n++;
                }
            }
        }
        return sum / n;
    }

    @Test
    void noiseKnobSetsTheNoiseLevel() {
        SyntheticFundus.Config c = SMALL.withNoise(0);
        byte[] clean = Torch.toBytes(SyntheticFundus.generate(c, 9).image());
        byte[] noisy = Torch.toBytes(SyntheticFundus.generate(c.withNoise(0.05), 9).image());
        byte[] fov = Torch.toBytes(SyntheticFundus.generate(c, 9).fov());
        double ss = 0;
        int n = 0;
        for (int i = 0; i < fov.length; i++) {
            if (fov[i] != 0) {
                for (int ch = 0; ch < 3; ch++) {
                    double d = (noisy[3 * i + ch] & 0xff) - (clean[3 * i + ch] & 0xff);
                    ss += d * d;
                    n++;
                }
            }
        }
        double std = Math.sqrt(ss / n) / 255;
        assertEquals(0.05, std, 0.006, "measured noise std");
    }

    @Test
    void thinVesselKnobRaisesTheShareOfThinVessels() {
        double lo = 0, hi = 0;
        for (long seed = 1; seed <= 3; seed++) {
            lo += SyntheticFundus.generate(SMALL.withSize(256, 256).withThinVessels(0.2), seed).stats().thinFraction();
            hi += SyntheticFundus.generate(SMALL.withSize(256, 256).withThinVessels(1.0), seed).stats().thinFraction();
        }
        assertEquals(0, lo, 1e-12, "no vessel under 1 px radius when the thinnest allowed is 1.22 px");
        assertTrue(hi / 3 > 0.05, "thin share at thinVessels=1: " + hi / 3);
        SyntheticFundus.Fundus f = SyntheticFundus.generate(SMALL.withThinVessels(1.0), 1);
        byte[] v = Torch.toBytes(f.vessels()), t = Torch.toBytes(f.thin());
        for (int i = 0; i < v.length; i++) {
            assertTrue(t[i] == 0 || v[i] == 1, "thin pixels are vessel pixels");
        }
    }

    @Test
    void fieldOfViewEstimateFindsTheAperture() {
        SyntheticFundus.Fundus f = SyntheticFundus.generate(SMALL, 21);
        byte[] est = Torch.toBytes(FieldOfView.estimate(f.image())), fov = Torch.toBytes(f.fov());
        int inter = 0, union = 0;
        for (int i = 0; i < est.length; i++) {
            inter += est[i] & fov[i];
            union += est[i] | fov[i];
        }
        assertTrue(inter / (double) union > 0.97, "IoU " + inter / (double) union);
    }

    @Test
    void badKnobsNameTheKnob() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SyntheticFundus.Config.defaults().withNoise(-0.1));
        assertTrue(e.getMessage().startsWith("noise"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SyntheticFundus.Config.defaults().withSize(8, 100));
        assertTrue(e.getMessage().startsWith("width"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SyntheticFundus.Config.defaults().withThinVessels(1.5));
        assertTrue(e.getMessage().startsWith("thinVessels"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SyntheticFundus.Config.defaults().withContrast(0));
        assertTrue(e.getMessage().startsWith("contrast"), e.getMessage());
    }
}
