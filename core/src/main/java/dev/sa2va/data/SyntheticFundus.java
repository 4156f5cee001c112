package dev.sa2va.data;

import dev.sa2va.core.Torch;
import java.util.List;
import org.bytedeco.pytorch.Tensor;

/**
 * Fundus-like RGB images with branching vessel trees and their exact ground truth, so the whole pipeline can be
 * run, tested and benchmarked without private data.
 *
 * <p>What is in an image: a circular field of view (FOV) on black, an orange-red background with low-frequency
 * choroidal texture, a bright optic disc with a brighter cup, a darker fovea, an illumination gradient, vignetting,
 * an arterial and a venous tree (see {@link VesselTree}: Murray's-law branching, tortuosity, crossings), a slight
 * optical blur and sensor noise. Vessels absorb light by the Beer-Lambert law along their chord, box-filtered over
 * the pixel, so a vessel thinner than a pixel darkens it in proportion to the area it covers and thin vessels have
 * less contrast than thick ones - as in real images. Green absorbs most, red least.
 *
 * <p>Ground truth: a pixel is a vessel pixel iff its centre lies inside a vessel, i.e. within the local radius of
 * a centre-line segment (radius interpolated along the segment). The same geometry drew the image, so the mask is
 * exact by construction. The FOV mask holds the pixels whose centre lies inside the FOV circle; all vessels lie
 * inside it.
 *
 * <p>Reproducible: the same {@link Config} and seed give the same bytes on every platform (fixed PRNG,
 * {@link StrictMath}, single thread).
 */
public final class SyntheticFundus {
    /** Vessels with a radius below this (px), i.e. narrower than 2 pixels, count as thin in {@link Stats}. */
    public static final double THIN_RADIUS = 1.0;

    private SyntheticFundus() {
    }

    /**
     * Difficulty knobs.
     *
     * @param width        image width in pixels (32..8192)
     * @param height       image height in pixels (32..8192)
     * @param thinVessels  0..1: how far down the vessel trees go; the thinnest radius is {@code 1.4 − 0.9·thin} px
     *                     (0: nothing under 2.8 px wide, 1: down to 1 px wide), so a larger value means a larger
     *                     share of thin vessels (reported in {@link Stats#thinFraction()})
     * @param contrast     vessel absorption multiplier (0..5]; 1 is DRIVE-like, smaller is fainter
     * @param noise        standard deviation of the additive Gaussian sensor noise, in units of full scale (0..0.5)
     * @param illumination strength of the linear illumination gradient across the FOV (0..1)
     * @param vignetting   darkening towards the FOV rim (0..1)
     * @param tortuosity   waviness of vessels (0..3); 0 gives smooth curves
     * @param branching    branch density multiplier (0..5]
     * @param blur         optical blur, Gaussian sigma in pixels at DRIVE scale (0..5); scaled with the FOV size
     */
    public record Config(int width, int height, double thinVessels, double contrast, double noise, double illumination,
                         double vignetting, double tortuosity, double branching, double blur) {
        public Config {
            check("width", width, 32, 8192);
            check("height", height, 32, 8192);
            check("thinVessels", thinVessels, 0, 1);
            check("contrast", contrast, 0, 5);
            if (contrast == 0) {
                throw new IllegalArgumentException("contrast must be > 0, got 0");
            }
            check("noise", noise, 0, 0.5);
            check("illumination", illumination, 0, 1);
            check("vignetting", vignetting, 0, 1);
            check("tortuosity", tortuosity, 0, 3);
            check("branching", branching, 0, 5);
            if (branching == 0) {
                throw new IllegalArgumentException("branching must be > 0, got 0");
            }
            check("blur", blur, 0, 5);
        }

        /** 512×512, medium difficulty. */
        public static Config defaults() {
            return new Config(512, 512, 0.5, 1.0, 0.02, 0.2, 0.35, 0.5, 1.0, 0.5);
        }

        public Config withSize(int w, int h) {
            return new Config(w, h, thinVessels, contrast, noise, illumination, vignetting, tortuosity, branching, blur);
        }

        public Config withThinVessels(double v) {
            return new Config(width, height, v, contrast, noise, illumination, vignetting, tortuosity, branching, blur);
        }

        public Config withContrast(double v) {
            return new Config(width, height, thinVessels, v, noise, illumination, vignetting, tortuosity, branching, blur);
        }

        public Config withNoise(double v) {
            return new Config(width, height, thinVessels, contrast, v, illumination, vignetting, tortuosity, branching, blur);
        }

        public Config withIllumination(double v) {
            return new Config(width, height, thinVessels, contrast, noise, v, vignetting, tortuosity, branching, blur);
        }

        public Config withVignetting(double v) {
            return new Config(width, height, thinVessels, contrast, noise, illumination, v, tortuosity, branching, blur);
        }

        public Config withTortuosity(double v) {
            return new Config(width, height, thinVessels, contrast, noise, illumination, vignetting, v, branching, blur);
        }

        public Config withBranching(double v) {
            return new Config(width, height, thinVessels, contrast, noise, illumination, vignetting, tortuosity, v, blur);
        }

        public Config withBlur(double v) {
            return new Config(width, height, thinVessels, contrast, noise, illumination, vignetting, tortuosity, branching, v);
        }

        /** Thinnest vessel radius generated, in pixels. */
        public double minRadius() {
            return 1.4 - 0.9 * thinVessels;
        }

        private static void check(String name, double v, double lo, double hi) {
            if (!(v >= lo && v <= hi)) {
                throw new IllegalArgumentException(name + " must be in [" + lo + ", " + hi + "], got " + v);
            }
        }
    }

    /**
     * What came out.
     *
     * @param segments       number of centre-line segments drawn
     * @param vesselFraction vessel pixels / FOV pixels
     * @param thinFraction   share of vessel pixels covered only by vessels thinner than {@link #THIN_RADIUS}
     */
    public record Stats(int segments, double vesselFraction, double thinFraction) {
    }

    /**
     * One generated image.
     *
     * @param image   uint8 {@code [H, W, 3]} RGB
     * @param vessels uint8 {@code [H, W]}, 1 = vessel
     * @param fov     uint8 {@code [H, W]}, 1 = inside the field of view
     * @param thin    uint8 {@code [H, W]}, 1 = vessel pixel of a thin vessel only (a subset of {@code vessels})
     */
    public record Fundus(Tensor image, Tensor vessels, Tensor fov, Tensor thin, Stats stats) {
    }

    /** The geometry of one image: where the FOV, disc and fovea are, and the vessel centre lines. */
    record Scene(VesselTree.Geometry geometry, List<VesselTree.Segment> segments) {
    }

    /** The scene of {@code generate(c, seed)}: its own random stream, so rendering changes do not move vessels. */
    static Scene scene(Config c, long seed) {
        SplitMix64 rng = new SplitMix64(SplitMix64.derive(seed, 0));
        int w = c.width(), h = c.height();
        double cx = w / 2.0 + rng.uniform(-0.01, 0.01) * Math.min(w, h);
        double cy = h / 2.0 + rng.uniform(-0.01, 0.01) * Math.min(w, h);
        double fovR = Math.min(0.47 * Math.min(w, h), Math.min(Math.min(cx, w - cx), Math.min(cy, h - cy)) - 1);
        double side = rng.nextBoolean() ? 1 : -1; // right or left eye: which side the optic disc is on
        double odR = 0.14 * fovR * rng.uniform(0.9, 1.1);
        double odX = cx + side * fovR * rng.uniform(0.36, 0.44);
        double odY = cy + fovR * rng.uniform(-0.06, 0.06);
        double fvX = cx - side * fovR * rng.uniform(0.10, 0.18);
        double fvY = odY + fovR * rng.uniform(0.0, 0.08);
        VesselTree.Geometry g = new VesselTree.Geometry(cx, cy, fovR, odX, odY, odR, fvX, fvY, 0.06 * fovR);
        return new Scene(g, VesselTree.grow(g, c.minRadius(), c.tortuosity(), c.branching(), 500_000, rng));
    }

    public static Fundus generate(Config c, long seed) {
        Scene scene = scene(c, seed);
        SplitMix64 rng = new SplitMix64(SplitMix64.derive(seed, 1));
        VesselTree.Geometry g = scene.geometry();
        List<VesselTree.Segment> segs = scene.segments();
        int w = c.width(), h = c.height();
        double s = g.scale(), cx = g.cx(), cy = g.cy(), fovR = g.fovRadius();
        double odX = g.odX(), odY = g.odY(), odR = g.odRadius(), fvX = g.foveaX(), fvY = g.foveaY();
        int n = w * h;
        float[][] tau = {new float[n], new float[n]}; // optical depth per tree (artery, vein)
        byte[] vessel = new byte[n];
        float[] maxRadius = new float[n];
        double[] mu = {0.055 * c.contrast() / s, 0.075 * c.contrast() / s};
        for (VesselTree.Segment sg : segs) {
            drawSegment(sg, w, h, mu[sg.kind()], tau[sg.kind()], vessel, maxRadius);
        }

        // per-image colour and lighting
        double[] base = {0.80 * rng.uniform(0.9, 1.1), 0.40 * rng.uniform(0.85, 1.15), 0.17 * rng.uniform(0.8, 1.2)};
        double gAngle = rng.uniform(0, 2 * StrictMath.PI);
        double gx = StrictMath.cos(gAngle), gy = StrictMath.sin(gAngle);
        ValueNoise coarse = new ValueNoise(5, rng), fine = new ValueNoise(13, rng);
        double[][] absorb = {{0.12, 1.0, 0.8}, {0.2, 1.0, 0.8}}; // per tree, per channel (R, G, B)
        double[] disc = {0.98, 0.86, 0.58}, cup = {1.0, 0.96, 0.80};
        float[][] rgb = {new float[n], new float[n], new float[n]};
        byte[] fov = new byte[n];
        long fovCount = 0, vesselCount = 0, thinCount = 0;
        byte[] thin = new byte[n];
        for (int py = 0; py < h; py++) {
            double qy = py + 0.5;
            for (int px = 0; px < w; px++) {
                double qx = px + 0.5;
                int i = py * w + px;
                double rr = len(qx - cx, qy - cy);
                double rho = rr / fovR;
                if (rr <= fovR) {
                    fov[i] = 1;
                    fovCount++;
                }
                if (vessel[i] != 0) {
                    vesselCount++;
                    if (maxRadius[i] < THIN_RADIUS) {
                        thin[i] = 1;
                        thinCount++;
                    }
                }
                double edge = Math.max(0, Math.min(1, fovR - rr + 0.5));
                if (edge == 0) {
                    for (int ch = 0; ch < 3; ch++) {
                        rgb[ch][i] = 0.012f;
                    }
                    continue;
                }
                double u = qx / w, v = qy / h;
                double tex = 1 + 0.07 * coarse.at(u, v) + 0.035 * fine.at(u, v);
                double light = (1 + c.illumination() * ((qx - cx) * gx + (qy - cy) * gy) / fovR)
                        * (1 - c.vignetting() * rho * rho * rho);
                double dOd = len(qx - odX, (qy - odY) / 1.08) / odR;
                double wDisc = 0.85 / (1 + StrictMath.exp((dOd - 1) / 0.08));
                double wCup = 0.6 / (1 + StrictMath.exp((dOd - 0.45) / 0.08));
                double dF = len(qx - fvX, qy - fvY) / (0.2 * fovR);
                double fovea = StrictMath.exp(-dF * dF);
                double tA = tau[VesselTree.ARTERY][i], tV = tau[VesselTree.VEIN][i];
                for (int ch = 0; ch < 3; ch++) {
                    double col = base[ch] + (disc[ch] - base[ch]) * wDisc;
                    col += (cup[ch] - col) * wCup;
                    col *= 1 - (ch == 0 ? 0.25 : 0.35) * fovea;
                    col *= tex * light;
                    col *= StrictMath.exp(-(absorb[0][ch] * tA + absorb[1][ch] * tV));
                    rgb[ch][i] = (float) (edge * col + (1 - edge) * 0.012);
                }
            }
        }
        if (c.blur() > 0) {
            double sigma = c.blur() * s;
            for (float[] ch : rgb) {
                gaussianBlur(ch, w, h, sigma);
            }
        }
        byte[] img = new byte[n * 3];
        for (int i = 0; i < n; i++) {
            for (int ch = 0; ch < 3; ch++) {
                double val = rgb[ch][i] + (c.noise() > 0 ? c.noise() * rng.nextGaussian() : 0);
                img[3 * i + ch] = (byte) Math.max(0, Math.min(255, (int) StrictMath.floor(val * 255 + 0.5)));
            }
        }
        Stats stats = new Stats(segs.size(), fovCount == 0 ? 0 : (double) vesselCount / fovCount,
                vesselCount == 0 ? 0 : (double) thinCount / vesselCount);
        return new Fundus(Torch.fromBytes(img, h, w, 3), Torch.fromBytes(vessel, h, w), Torch.fromBytes(fov, h, w),
                Torch.fromBytes(thin, h, w), stats);
    }

    /** sqrt(x² + y²) without {@code hypot}'s overflow care (not needed here), which is many times slower. */
    private static double len(double x, double y) {
        return StrictMath.sqrt(x * x + y * y);
    }

    /** Rasterises one truncated cone: ground truth by pixel centre, optical depth by box-filtered chord. */
    private static void drawSegment(VesselTree.Segment sg, int w, int h, double mu, float[] tau, byte[] vessel,
                                    float[] maxRadius) {
        double ax = sg.ax(), ay = sg.ay(), dx = sg.bx() - ax, dy = sg.by() - ay;
        double rMax = Math.max(sg.ra(), sg.rb());
        double len2 = dx * dx + dy * dy;
        int x0 = Math.max(0, (int) StrictMath.floor(Math.min(ax, sg.bx()) - rMax - 1));
        int x1 = Math.min(w - 1, (int) StrictMath.ceil(Math.max(ax, sg.bx()) + rMax + 1));
        int y0 = Math.max(0, (int) StrictMath.floor(Math.min(ay, sg.by()) - rMax - 1));
        int y1 = Math.min(h - 1, (int) StrictMath.ceil(Math.max(ay, sg.by()) + rMax + 1));
        for (int py = y0; py <= y1; py++) {
            double qy = py + 0.5;
            for (int px = x0; px <= x1; px++) {
                double qx = px + 0.5;
                double t = len2 > 0 ? ((qx - ax) * dx + (qy - ay) * dy) / len2 : 0;
                t = Math.max(0, Math.min(1, t));
                double ex = ax + t * dx - qx, ey = ay + t * dy - qy;
                double d = StrictMath.sqrt(ex * ex + ey * ey);
                double r = sg.ra() + t * (sg.rb() - sg.ra());
                if (d - 0.5 >= r) {
                    continue;
                }
                int i = py * w + px;
                if (d <= r) {
                    vessel[i] = 1;
                    if (r > maxRadius[i]) {
                        maxRadius[i] = (float) r;
                    }
                }
                float od = (float) (mu * chordOverPixel(d, r));
                if (od > tau[i]) {
                    tau[i] = od; // max within a tree: overlapping joints of one vessel must not darken twice
                }
            }
        }
    }

    /**
     * Mean path length through a cylinder of radius r along the viewing direction, averaged over a pixel-wide band
     * at distance d from its axis: {@code ∫_{d−½}^{d+½} 2√(r² − u²) du}, clipped to |u| ≤ r.
     */
    static double chordOverPixel(double d, double r) {
        double a = Math.max(d - 0.5, -r), b = Math.min(d + 0.5, r);
        if (b <= a) {
            return 0;
        }
        return chordIntegral(b, r) - chordIntegral(a, r);
    }

    private static double chordIntegral(double u, double r) {
        double q = Math.max(0, r * r - u * u);
        return u * StrictMath.sqrt(q) + r * r * StrictMath.asin(Math.max(-1, Math.min(1, u / r)));
    }

    private static void gaussianBlur(float[] a, int w, int h, double sigma) {
        int rad = Math.max(1, (int) StrictMath.ceil(3 * sigma));
        double[] k = new double[2 * rad + 1];
        double sum = 0;
        for (int i = -rad; i <= rad; i++) {
            k[i + rad] = StrictMath.exp(-0.5 * i * i / (sigma * sigma));
            sum += k[i + rad];
        }
        for (int i = 0; i < k.length; i++) {
            k[i] /= sum;
        }
        float[] tmp = new float[a.length];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                double acc = 0;
                for (int j = -rad; j <= rad; j++) {
                    int xx = Math.max(0, Math.min(w - 1, x + j)); // edge replication
                    acc += k[j + rad] * a[y * w + xx];
                }
                tmp[y * w + x] = (float) acc;
            }
        }
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                double acc = 0;
                for (int j = -rad; j <= rad; j++) {
                    int yy = Math.max(0, Math.min(h - 1, y + j));
                    acc += k[j + rad] * tmp[yy * w + x];
                }
                a[y * w + x] = (float) acc;
            }
        }
    }

    /** Smooth random field in [-1, 1]: random values on a grid, smoothstep-interpolated. */
    private static final class ValueNoise {
        private final int cells;
        private final double[] v;

        ValueNoise(int cells, SplitMix64 rng) {
            this.cells = cells;
            this.v = new double[(cells + 1) * (cells + 1)];
            for (int i = 0; i < v.length; i++) {
                v[i] = rng.uniform(-1, 1);
            }
        }

        double at(double u, double w) {
            double x = Math.max(0, Math.min(cells - 1e-9, u * cells));
            double y = Math.max(0, Math.min(cells - 1e-9, w * cells));
            int i = (int) x, j = (int) y;
            double fx = smooth(x - i), fy = smooth(y - j);
            int n = cells + 1;
            double a = v[j * n + i] + (v[j * n + i + 1] - v[j * n + i]) * fx;
            double b = v[(j + 1) * n + i] + (v[(j + 1) * n + i + 1] - v[(j + 1) * n + i]) * fx;
            return a + (b - a) * fy;
        }

        private static double smooth(double t) {
            return t * t * (3 - 2 * t);
        }
    }
}
