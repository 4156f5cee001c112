package dev.sa2va.data;

/**
 * {@code count} synthetic fundus images ({@link SyntheticFundus}) as a {@link SampleSource}. Sample {@code i} is
 * generated from a seed derived from {@code (seed, i)}, so it is the same whatever {@code count} is, and it is
 * generated again on every {@link #load} (nothing is cached).
 */
public final class SyntheticSource implements SampleSource {
    /** The referring expression given with synthetic samples. */
    public static final String TEXT = "blood vessels";

    private final SyntheticFundus.Config config;
    private final long seed;
    private final int count;
    private final String text;

    public SyntheticSource(SyntheticFundus.Config config, long seed, int count) {
        this(config, seed, count, TEXT);
    }

    public SyntheticSource(SyntheticFundus.Config config, long seed, int count, String text) {
        if (config == null) {
            throw new IllegalArgumentException("config is null");
        }
        if (count < 0) {
            throw new IllegalArgumentException("count must be >= 0, got " + count);
        }
        this.config = config;
        this.seed = seed;
        this.count = count;
        this.text = text;
    }

    public SyntheticFundus.Config config() {
        return config;
    }

    public long seed() {
        return seed;
    }

    /** The generator seed of sample {@code index}. */
    public long sampleSeed(int index) {
        return SplitMix64.derive(seed, index);
    }

    @Override
    public String name() {
        return "synthetic (" + config.width() + "x" + config.height() + ", seed " + seed + ")";
    }

    @Override
    public int size() {
        return count;
    }

    @Override
    public String id(int index) {
        checkIndex(index);
        return String.format("synthetic_%04d", index + 1);
    }

    /** The full generator output of sample {@code index} (also the thin-vessel mask and statistics). */
    public SyntheticFundus.Fundus fundus(int index) {
        checkIndex(index);
        return SyntheticFundus.generate(config, sampleSeed(index));
    }

    @Override
    public Sample load(int index) {
        SyntheticFundus.Fundus f = fundus(index);
        return new Sample(id(index), id(index), f.image(), f.vessels(), f.fov(), text);
    }
}
