package dev.sa2va.mllm;

/**
 * Pillow's {@code Image.resize(size)} for 8-bit RGB with its default filter (BICUBIC, a = −0.5, antialiased),
 * re-stated from Pillow's resampling algorithm so that Sa2VA's tiles are the same bytes as in Python: separable
 * passes, horizontal first (only when the width changes), each rounding to 8 bits; filter support scaled by
 * the downscale factor; per-pixel weights normalised to sum 1 in double, then converted to 22-bit fixed point
 * (Pillow's PRECISION_BITS = 32 − 8 − 2) and accumulated in int with a rounding offset; results clamped to
 * [0, 255]. No library on Maven Central reproduces PIL's bytes (Java2D and imgscalr use other kernels), and
 * libtorch's antialiased bicubic works in float without the intermediate 8-bit rounding (±1–2 LSB off).
 *
 * <p>Images are interleaved RGB bytes, row-major ({@code [H, W, 3]}).
 */
public final class PilResize {
    private static final int PRECISION_BITS = 32 - 8 - 2;
    private static final double SUPPORT = 2.0;

    private PilResize() {
    }

    private static double bicubic(double x) {
        final double a = -0.5;
        x = Math.abs(x);
        if (x < 1.0) {
            return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        }
        if (x < 2.0) {
            return (((x - 5) * x + 8) * x - 4) * a;
        }
        return 0.0;
    }

    /** Fixed-point weights of one axis: for output i, taps bounds[2i] .. bounds[2i] + bounds[2i+1] − 1. */
    private record Coeffs(int ksize, int[] bounds, int[] k) {
    }

    private static Coeffs coeffs(int inSize, int outSize) {
        double scale = (double) inSize / outSize;
        double filterscale = Math.max(scale, 1.0);
        double support = SUPPORT * filterscale;
        int ksize = (int) Math.ceil(support) * 2 + 1;
        int[] bounds = new int[outSize * 2];
        int[] k = new int[outSize * ksize];
        double[] w = new double[ksize];
        for (int xx = 0; xx < outSize; xx++) {
            double center = (xx + 0.5) * scale;
            double ss = 1.0 / filterscale;
            // (int) truncates toward zero like C's cast; negatives are clamped right after
            int xmin = (int) (center - support + 0.5);
            if (xmin < 0) {
                xmin = 0;
            }
            int xmax = (int) (center + support + 0.5);
            if (xmax > inSize) {
                xmax = inSize;
            }
            xmax -= xmin;
            double ww = 0.0;
            for (int x = 0; x < xmax; x++) {
                w[x] = bicubic((x + xmin - center + 0.5) * ss);
                ww += w[x];
            }
            for (int x = 0; x < xmax; x++) {
                double v = ww != 0.0 ? w[x] / ww : w[x];
                k[xx * ksize + x] = v < 0 ? (int) (-0.5 + v * (1 << PRECISION_BITS))
                        : (int) (0.5 + v * (1 << PRECISION_BITS));
            }
            bounds[xx * 2] = xmin;
            bounds[xx * 2 + 1] = xmax;
        }
        return new Coeffs(ksize, bounds, k);
    }

    private static int clip8(int acc) {
        int v = acc >> PRECISION_BITS;
        return v < 0 ? 0 : Math.min(v, 255);
    }

    /**
     * Resizes an RGB image ({@code rgb.length == 3·width·height}) to {@code outWidth × outHeight}, as Pillow's
     * {@code Image.resize((outWidth, outHeight))} does for mode "RGB".
     */
    public static byte[] resize(byte[] rgb, int width, int height, int outWidth, int outHeight) {
        if (width <= 0 || height <= 0 || outWidth <= 0 || outHeight <= 0) {
            throw new IllegalArgumentException("sizes must be positive: " + width + "x" + height + " -> " + outWidth
                    + "x" + outHeight);
        }
        if (rgb == null || rgb.length != 3L * width * height) {
            throw new IllegalArgumentException("rgb: expected " + 3L * width * height + " bytes for " + width + "x"
                    + height + ", got " + (rgb == null ? "null" : rgb.length));
        }
        if (width == outWidth && height == outHeight) {
            return rgb.clone();
        }
        byte[] cur = rgb;
        int curW = width;
        int curH = height;
        if (outWidth != width) {
            Coeffs vert = outHeight != height ? coeffs(height, outHeight) : null;
            // only the source rows the vertical pass will read are resampled (same result, less work)
            int first = vert == null ? 0 : vert.bounds[0];
            int last = vert == null ? height : vert.bounds[outHeight * 2 - 2] + vert.bounds[outHeight * 2 - 1];
            cur = horizontal(cur, curW, first, last, outWidth);
            curW = outWidth;
            curH = last - first;
            if (vert != null) {
                return vertical(cur, curW, curH, vert, first, outHeight);
            }
            return cur;
        }
        return vertical(cur, curW, curH, coeffs(height, outHeight), 0, outHeight);
    }

    private static byte[] horizontal(byte[] in, int w, int rowFirst, int rowLast, int outW) {
        Coeffs c = coeffs(w, outW);
        int rows = rowLast - rowFirst;
        byte[] out = new byte[rows * outW * 3];
        final int half = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < rows; y++) {
            int rowIn = (y + rowFirst) * w * 3;
            int rowOut = y * outW * 3;
            for (int xx = 0; xx < outW; xx++) {
                int xmin = c.bounds[xx * 2];
                int n = c.bounds[xx * 2 + 1];
                int kb = xx * c.ksize;
                int s0 = half, s1 = half, s2 = half;
                for (int x = 0; x < n; x++) {
                    int p = rowIn + (x + xmin) * 3;
                    int kk = c.k[kb + x];
                    s0 += (in[p] & 0xff) * kk;
                    s1 += (in[p + 1] & 0xff) * kk;
                    s2 += (in[p + 2] & 0xff) * kk;
                }
                out[rowOut + xx * 3] = (byte) clip8(s0);
                out[rowOut + xx * 3 + 1] = (byte) clip8(s1);
                out[rowOut + xx * 3 + 2] = (byte) clip8(s2);
            }
        }
        return out;
    }

    /** Vertical pass; {@code in} starts at source row {@code rowOffset}. */
    private static byte[] vertical(byte[] in, int w, int h, Coeffs c, int rowOffset, int outH) {
        byte[] out = new byte[outH * w * 3];
        final int half = 1 << (PRECISION_BITS - 1);
        int[] acc = new int[w * 3];
        for (int yy = 0; yy < outH; yy++) {
            int ymin = c.bounds[yy * 2] - rowOffset;
            int n = c.bounds[yy * 2 + 1];
            int kb = yy * c.ksize;
            java.util.Arrays.fill(acc, half);
            for (int y = 0; y < n; y++) {
                int kk = c.k[kb + y];
                int row = (y + ymin) * w * 3;
                for (int i = 0; i < w * 3; i++) {
                    acc[i] += (in[row + i] & 0xff) * kk;
                }
            }
            int rowOut = yy * w * 3;
            for (int i = 0; i < w * 3; i++) {
                out[rowOut + i] = (byte) clip8(acc[i]);
            }
        }
        return out;
    }
}
