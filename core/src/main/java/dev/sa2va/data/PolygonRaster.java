package dev.sa2va.data;

import java.util.Arrays;

/**
 * Polygon filling for annotation masks: a pixel is inside when its centre {@code (x + 0.5, y + 0.5)} is inside the
 * polygon by the even-odd rule; vertex coordinates are in pixels with the origin at the image's top-left corner.
 * An axis-aligned rectangle with integer corners therefore covers exactly its area in pixels.
 *
 * <p>pycocotools (which Sa2VA's fine-tuning loader uses) rasterises differently on the boundary (it snaps vertices
 * to a 1/5-pixel grid and walks the edges), so masks can differ from Sa2VA's by boundary pixels; interiors agree.
 */
public final class PolygonRaster {
    private PolygonRaster() {
    }

    /**
     * Sets {@code out[y * w + x] = 1} for every pixel inside the polygon (leaves the others as they are, so several
     * polygons filled into one array give their union).
     *
     * @param xy {@code [x0, y0, x1, y1, ...]}, at least 3 vertices
     */
    public static void fill(double[] xy, int w, int h, byte[] out) {
        if (xy.length < 6 || xy.length % 2 != 0) {
            throw new IllegalArgumentException("polygon needs an even number (>= 6) of coordinates, got " + xy.length);
        }
        if (out.length < (long) w * h) {
            throw new IllegalArgumentException("out has " + out.length + " bytes for a " + w + "x" + h + " image");
        }
        int n = xy.length / 2;
        double yMin = Double.POSITIVE_INFINITY, yMax = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            double x = xy[2 * i], y = xy[2 * i + 1];
            if (!Double.isFinite(x) || !Double.isFinite(y)) {
                throw new IllegalArgumentException("polygon vertex " + i + " is not finite: (" + x + ", " + y + ")");
            }
            yMin = Math.min(yMin, y);
            yMax = Math.max(yMax, y);
        }
        int r0 = (int) Math.max(0, Math.ceil(yMin - 0.5));
        int r1 = (int) Math.min(h - 1, Math.floor(yMax - 0.5));
        double[] xs = new double[n];
        for (int row = r0; row <= r1; row++) {
            double yc = row + 0.5;
            int k = 0;
            for (int i = 0; i < n; i++) {
                int j = i + 1 == n ? 0 : i + 1;
                double y0 = xy[2 * i + 1], y1 = xy[2 * j + 1];
                // half-open in y: a vertex exactly on the scan line is counted once, horizontal edges never
                if ((y0 <= yc) != (y1 <= yc)) {
                    double x0 = xy[2 * i], x1 = xy[2 * j];
                    xs[k++] = x0 + (yc - y0) * (x1 - x0) / (y1 - y0);
                }
            }
            Arrays.sort(xs, 0, k);
            for (int p = 0; p + 1 < k; p += 2) {
                // centres x + 0.5 in [xs[p], xs[p + 1])
                long a = (long) Math.ceil(xs[p] - 0.5), b = (long) Math.ceil(xs[p + 1] - 0.5) - 1;
                a = Math.max(a, 0);
                b = Math.min(b, w - 1);
                for (long x = a; x <= b; x++) {
                    out[row * w + (int) x] = 1;
                }
            }
        }
    }
}
