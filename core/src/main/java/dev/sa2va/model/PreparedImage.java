package dev.sa2va.model;

import dev.sa2va.sam2.ImageFeatures;
import org.bytedeco.pytorch.Tensor;

/**
 * What {@link Sa2VA} computes once per image and reuses for every prompt on it: the MLLM's image tokens (InternViT →
 * pixel shuffle → mlp1 of every tile) and SAM2's image features. Owns device memory until {@link #close()}; it is
 * not tied to any {@code PointerScope}, so it may be kept across calls (e.g. by {@link Sa2vaSegmenter} for the
 * prompts of one image).
 */
public final class PreparedImage implements AutoCloseable {
    private final Sa2VA owner;
    private final int width;
    private final int height;
    private final int columns;
    private final int rows;
    private final int maxTiles;
    private final Tensor imageTokens;
    private final ImageFeatures samFeatures;
    private final double cpuMillis;
    private boolean closed;

    PreparedImage(Sa2VA owner, int width, int height, int columns, int rows, int maxTiles, Tensor imageTokens,
                  ImageFeatures samFeatures, double cpuMillis) {
        this.owner = owner;
        this.width = width;
        this.height = height;
        this.columns = columns;
        this.rows = rows;
        this.maxTiles = maxTiles;
        this.imageTokens = imageTokens;
        this.samFeatures = samFeatures;
        this.cpuMillis = cpuMillis;
    }

    public int width() {
        return width;
    }

    public int height() {
        return height;
    }

    /** Grid columns × rows chosen by the dynamic tiling. */
    public int columns() {
        return columns;
    }

    public int rows() {
        return rows;
    }

    /** Tiles given to the MLLM: the grid, plus a thumbnail when the grid has more than one tile. */
    public int tiles() {
        check();
        return (int) imageTokens.size(0);
    }

    /** The tile limit this image was prepared with. */
    public int maxTiles() {
        return maxTiles;
    }

    /** Milliseconds of CPU preprocessing (PIL-exact resizes, tiling, normalisation). */
    public double cpuMillis() {
        return cpuMillis;
    }

    /** {@code [tiles, tokensPerTile, H]} image tokens, model dtype and device. */
    public Tensor imageTokens() {
        check();
        return imageTokens;
    }

    public ImageFeatures samFeatures() {
        check();
        return samFeatures;
    }

    Sa2VA owner() {
        return owner;
    }

    public boolean isClosed() {
        return closed;
    }

    private void check() {
        if (closed) {
            throw new IllegalStateException("PreparedImage was closed");
        }
    }

    /** Frees the features now (idempotent). */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        imageTokens.close();
        samFeatures.imageEmbedding().close();
        samFeatures.featS0().close();
        samFeatures.featS1().close();
    }
}
