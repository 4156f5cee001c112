package dev.sa2va.mllm;

import dev.sa2va.core.Torch;
import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Tensor;

/**
 * Sa2VA's image preprocessing for the MLLM (InternVL {@code dynamic_preprocess} with min 1, max 12 tiles and a
 * thumbnail, as hard-coded in Sa2VA's {@code predict_forward}): choose a grid of {@code columns × rows} tiles from
 * the aspect ratio, resize the whole image to that many tiles with PIL's default resize ({@link PilResize}),
 * cut the tiles row-major, append a thumbnail (the original resized to one tile) when there is more than one
 * tile, then ToTensor (/255) and ImageNet normalisation in float32.
 */
public final class DynamicTiling {
    /** ImageNet statistics as torchvision's Normalize takes them (float32). */
    static final float[] MEAN = {0.485f, 0.456f, 0.406f};
    static final float[] STD = {0.229f, 0.224f, 0.225f};

    /**
     * The candidate grids (columns, rows) with 1 ≤ columns·rows ≤ 12 in the order Sa2VA visits them: Python
     * {@code sorted(set(...), key=area)}. The order inside one area comes from CPython's set iteration (stable
     * since 3.8, where tuple hashing became xxHash-based); it decides exact ties such as 1×2 vs 2×1 at aspect
     * 5:4. Listed rather than re-derived from CPython's hash table; the tests compare it with Python's output.
     */
    static final int[][] CANDIDATES = {
        {1, 1}, {1, 2}, {2, 1}, {3, 1}, {1, 3}, {2, 2}, {4, 1}, {1, 4}, {5, 1}, {1, 5}, {1, 6}, {6, 1}, {3, 2},
        {2, 3}, {7, 1}, {1, 7}, {4, 2}, {2, 4}, {1, 8}, {8, 1}, {1, 9}, {3, 3}, {9, 1}, {2, 5}, {5, 2}, {10, 1},
        {1, 10}, {11, 1}, {1, 11}, {12, 1}, {3, 4}, {4, 3}, {1, 12}, {6, 2}, {2, 6},
    };

    /** The chosen grid and the normalised tiles {@code [tiles, 3, S, S]} (float32, CPU). */
    public record Tiles(int columns, int rows, Tensor pixelValues) {
        public int count() {
            return (int) pixelValues.size(0);
        }
    }

    private final int tileSize;

    /** Tiles of {@code tileSize} pixels (the vision config's image size, 448 for Sa2VA). */
    public DynamicTiling(int tileSize) {
        if (tileSize <= 0) {
            throw new IllegalArgumentException("tileSize must be > 0, got " + tileSize);
        }
        this.tileSize = tileSize;
    }

    public int tileSize() {
        return tileSize;
    }

    /**
     * InternVL's {@code find_closest_aspect_ratio}: the grid minimising |W/H − columns/rows| (first found wins,
     * strict {@code <}); on an exact tie a later grid replaces it when the image area exceeds half the area of
     * that grid's tiles.
     */
    public int[] grid(int width, int height) {
        if (width <= 0 || height <= 0) {
            throw new IllegalArgumentException("image size must be positive, got " + width + "x" + height);
        }
        double aspect = (double) width / height;
        double area = (double) width * height;
        double bestDiff = Double.POSITIVE_INFINITY;
        int[] best = {1, 1};
        for (int[] c : CANDIDATES) {
            double diff = Math.abs(aspect - (double) c[0] / c[1]);
            if (diff < bestDiff) {
                bestDiff = diff;
                best = c;
            } else if (diff == bestDiff && area > 0.5 * tileSize * tileSize * c[0] * c[1]) {
                best = c;
            }
        }
        return best.clone();
    }

    /** Tiles of an image (any BufferedImage type; colours through {@code getRGB}, alpha ignored). */
    public Tiles tiles(BufferedImage image) {
        int w = image.getWidth(), h = image.getHeight();
        byte[] rgb = new byte[w * h * 3];
        int[] row = new int[w];
        for (int y = 0; y < h; y++) {
            image.getRGB(0, y, w, 1, row, 0, w);
            for (int x = 0; x < w; x++) {
                int c = row[x], o = (y * w + x) * 3;
                rgb[o] = (byte) (c >> 16);
                rgb[o + 1] = (byte) (c >> 8);
                rgb[o + 2] = (byte) c;
            }
        }
        return tiles(rgb, w, h);
    }

    /** Tiles of interleaved RGB bytes {@code [height, width, 3]}. */
    public Tiles tiles(byte[] rgb, int width, int height) {
        int[] g = grid(width, height);
        int cols = g[0], rows = g[1];
        int tw = tileSize * cols, th = tileSize * rows;
        byte[] resized = PilResize.resize(rgb, width, height, tw, th);
        List<byte[]> tiles = new ArrayList<>();
        for (int k = 0; k < cols * rows; k++) {
            int x0 = (k % cols) * tileSize, y0 = (k / cols) * tileSize;
            byte[] t = new byte[tileSize * tileSize * 3];
            for (int y = 0; y < tileSize; y++) {
                System.arraycopy(resized, ((y0 + y) * tw + x0) * 3, t, y * tileSize * 3, tileSize * 3);
            }
            tiles.add(t);
        }
        if (tiles.size() != 1) {
            tiles.add(PilResize.resize(rgb, width, height, tileSize, tileSize));
        }
        int n = tiles.size(), plane = tileSize * tileSize;
        float[] px = new float[n * 3 * plane];
        for (int i = 0; i < n; i++) {
            byte[] t = tiles.get(i);
            for (int c = 0; c < 3; c++) {
                int base = (i * 3 + c) * plane;
                for (int p = 0; p < plane; p++) {
                    // torchvision: ToTensor divides by 255, Normalize subtracts then divides, all in float32
                    px[base + p] = ((t[p * 3 + c] & 0xff) / 255f - MEAN[c]) / STD[c];
                }
            }
        }
        return new Tiles(cols, rows, Torch.fromFloats(px, n, 3, tileSize, tileSize));
    }
}
