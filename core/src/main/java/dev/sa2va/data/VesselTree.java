package dev.sa2va.data;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * Centre lines of a synthetic retinal vasculature: an arterial and a venous tree growing out of the optic disc as
 * chains of short tapered segments.
 *
 * <ul>
 *   <li>Branching follows Murray's law, {@code r0³ = r1³ + r2³}, with the branch angles that minimise the work of
 *       the bifurcation, {@code cos θ1 = (r0⁴ + r1⁴ − r2⁴) / (2 r0² r1²)} (and symmetrically θ2): the thinner daughter
 *       leaves at the larger angle, as in real fundus images.</li>
 *   <li>Tortuosity: the heading's curvature is an Ornstein-Uhlenbeck process along the arc length, so wiggles are
 *       smooth and thin vessels wiggle on shorter scales than thick ones.</li>
 *   <li>The four main trunks follow the temporal arcades around the fovea and the nasal directions; vessels stop
 *       at the foveal avascular zone and at the rim of the field of view. Arteries and veins are separate trees, so
 *       they cross each other.</li>
 * </ul>
 * Everything is in pixels; {@code scale} is the FOV radius over 270 px (DRIVE's), so a DRIVE-sized image gets
 * DRIVE-like vessel widths, while the thinnest radius stays in pixels (that is what makes thin vessels hard).
 */
final class VesselTree {
    static final int ARTERY = 0;
    static final int VEIN = 1;

    /** A truncated cone from a to b: radius ra at a, rb at b. */
    record Segment(double ax, double ay, double bx, double by, double ra, double rb, int kind) {
    }

    /** Where things are in the image. */
    record Geometry(double cx, double cy, double fovRadius, double odX, double odY, double odRadius,
                    double foveaX, double foveaY, double fazRadius) {
        double scale() {
            return fovRadius / 270.0;
        }
    }

    private static final int STEER_ARCADE = 0;
    private static final int STEER_RADIAL = 1;

    private record Branch(double x, double y, double heading, double radius, int kind, int steer, double steerGain) {
    }

    private final Geometry g;
    private final double minRadius;
    private final double tortuosity;
    private final double branching;
    private final int maxSegments;
    private final SplitMix64 rng;
    private final List<Segment> out = new ArrayList<>();

    private VesselTree(Geometry g, double minRadius, double tortuosity, double branching, int maxSegments,
                       SplitMix64 rng) {
        this.g = g;
        this.minRadius = minRadius;
        this.tortuosity = tortuosity;
        this.branching = branching;
        this.maxSegments = maxSegments;
        this.rng = rng;
    }

    static List<Segment> grow(Geometry g, double minRadius, double tortuosity, double branching, int maxSegments,
                              SplitMix64 rng) {
        VesselTree t = new VesselTree(g, minRadius, tortuosity, branching, maxSegments, rng);
        t.growAll();
        return t.out;
    }

    private void growAll() {
        double s = g.scale();
        double towardFovea = StrictMath.atan2(g.foveaY() - g.odY(), g.foveaX() - g.odX());
        double tx = StrictMath.cos(towardFovea);
        Deque<Branch> todo = new ArrayDeque<>();
        // in small images the trunks would scale below the thinnest radius and no vessel would be drawn: keep them
        // a little above it (the tree is then shallower, not empty)
        double floor = 1.6 * minRadius;
        for (int kind : new int[] {VEIN, ARTERY}) {
            double k = kind == VEIN ? 1.0 : 0.78;
            // temporal arcades: leave the disc up / down, slightly towards the fovea, then bend around it
            for (int up : new int[] {-1, 1}) {
                double h = StrictMath.atan2(up * 0.95, 0.35 * tx) + jitter(0.15);
                todo.add(new Branch(startX(), startY(), h, Math.max(floor, 3.9 * s) * k * rng.uniform(0.92, 1.08), kind,
                        STEER_ARCADE, 1.0));
            }
            // nasal vessels: away from the fovea, up and down
            for (int up : new int[] {-1, 1}) {
                double h = StrictMath.atan2(up * 0.7, -tx) + jitter(0.2);
                todo.add(new Branch(startX(), startY(), h, Math.max(floor, 2.9 * s) * k * rng.uniform(0.9, 1.1), kind,
                        STEER_RADIAL, 0.6));
            }
            // a thinner vessel straight towards the macula
            todo.add(new Branch(startX(), startY(), towardFovea + jitter(0.25), Math.max(floor, 1.7 * s) * k, kind,
                    STEER_RADIAL, 0.4));
        }
        while (!todo.isEmpty() && out.size() < maxSegments) {
            grow(todo.removeFirst(), todo);
        }
    }

    private double startX() {
        return g.odX() + rng.uniform(-0.25, 0.25) * g.odRadius();
    }

    private double startY() {
        return g.odY() + rng.uniform(-0.25, 0.25) * g.odRadius();
    }

    private double jitter(double radians) {
        return rng.uniform(-radians, radians);
    }

    private void grow(Branch b, Deque<Branch> todo) {
        double s = g.scale();
        double x = b.x(), y = b.y(), h = b.heading(), r = b.radius();
        if (r < minRadius) {
            return;
        }
        double curvature = 0;
        double sinceBranch = 0;
        double arcRadius = StrictMath.hypot(g.odX() - g.foveaX(), g.odY() - g.foveaY());
        int steps = 0;
        int maxSteps = (int) (8 * g.fovRadius() / 0.5);
        while (out.size() < maxSegments && steps++ < maxSteps) {
            double ds = Math.max(0.6, Math.min(0.8 * r, 2.5 * s));
            // curvature: OU process with correlation length ell; stationary std kappaStd
            double ell = 8 * r + 6 * s;
            double kappaStd = tortuosity * 0.6 / ell;
            curvature += -curvature * ds / ell + kappaStd * StrictMath.sqrt(2 * ds / ell) * rng.nextGaussian();
            h += curvature * ds + steer(b, x, y, h, arcRadius) * ds;
            double nx = x + ds * StrictMath.cos(h), ny = y + ds * StrictMath.sin(h);
            double nr = r * StrictMath.exp(-ds / (2.5 * g.fovRadius()));
            // stop at the rim of the field of view and at the foveal avascular zone
            if (StrictMath.hypot(nx - g.cx(), ny - g.cy()) > g.fovRadius() - nr - 1.0
                    || StrictMath.hypot(nx - g.foveaX(), ny - g.foveaY()) < g.fazRadius() + nr) {
                return;
            }
            out.add(new Segment(x, y, nx, ny, r, nr, b.kind()));
            x = nx;
            y = ny;
            r = nr;
            if (r < minRadius) {
                return;
            }
            sinceBranch += ds;
            // branch spacing grows faster than the image, so the vessel density stays DRIVE-like as images grow
            // (thin vessels would otherwise keep branching down to the same pixel radius in every resolution)
            double spacing = (5 + 10 * r / s) * s * s / branching;
            if (sinceBranch > 2 * r + 3 * s && rng.nextDouble() < ds / spacing) {
                // Murray's law with a random asymmetry k = r2 / r1, skewed towards thin side branches; k is drawn
                // from what still gives a daughter of at least minRadius, so thin vessels branch off thick ones
                double kLo = Math.max(0.25, 1.05 * minRadius / r);
                double k = kLo + (0.95 - kLo) * StrictMath.pow(rng.nextDouble(), 2);
                double r1 = r / StrictMath.cbrt(1 + k * k * k);
                double r2 = k * r1;
                if (kLo < 0.95 && r2 >= minRadius) {
                    double r0s = r * r, r1s = r1 * r1, r2s = r2 * r2;
                    double th1 = StrictMath.acos(clamp((r0s * r0s + r1s * r1s - r2s * r2s) / (2 * r0s * r1s)));
                    double th2 = StrictMath.acos(clamp((r0s * r0s + r2s * r2s - r1s * r1s) / (2 * r0s * r2s)));
                    double side = rng.nextBoolean() ? 1 : -1;
                    todo.add(new Branch(x, y, h - side * th2, r2, b.kind(), STEER_RADIAL, 0.3));
                    h += side * th1;
                    r = r1;
                    sinceBranch = 0;
                }
            }
        }
    }

    /** Heading change per pixel of arc length that pulls the vessel towards its preferred course. */
    private double steer(Branch b, double x, double y, double h, double arcRadius) {
        double target;
        double length;
        if (b.steer() == STEER_ARCADE) {
            // follow a circle around the fovea of radius arcRadius, in the sense the vessel already moves
            double rx = x - g.foveaX(), ry = y - g.foveaY();
            double d = Math.max(1e-9, StrictMath.hypot(rx, ry));
            double ux = rx / d, uy = ry / d;
            double tx = -uy, ty = ux;
            if (tx * StrictMath.cos(h) + ty * StrictMath.sin(h) < 0) {
                tx = -tx;
                ty = -ty;
            }
            double pull = clamp((d - arcRadius) / arcRadius) * 1.5; // > 0: too far out, pull inwards
            target = StrictMath.atan2(ty - pull * uy, tx - pull * ux);
            length = 0.12 * g.fovRadius();
        } else {
            target = StrictMath.atan2(y - g.odY(), x - g.odX());
            length = 0.5 * g.fovRadius();
        }
        return b.steerGain() * wrap(target - h) / length;
    }

    private static double wrap(double a) {
        return StrictMath.IEEEremainder(a, 2 * StrictMath.PI);
    }

    private static double clamp(double v) {
        return Math.max(-1, Math.min(1, v));
    }
}
