package dev.sa2va.data;

/**
 * SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded generator whose output is fixed by its definition, so a
 * synthetic sample is the same bytes on every JVM and platform ({@code java.util.SplittableRandom} does not
 * promise its algorithm across releases). Gaussians use Box-Muller with {@link StrictMath} for the same reason.
 */
final class SplitMix64 {
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;
    private long state;
    private double spare;
    private boolean hasSpare;

    SplitMix64(long seed) {
        this.state = seed;
    }

    /** A well-mixed seed for stream {@code index} of a generator seeded with {@code seed}. */
    static long derive(long seed, long index) {
        return mix(mix(seed) + GOLDEN * (index + 1));
    }

    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    long nextLong() {
        state += GOLDEN;
        return mix(state);
    }

    /** Uniform in [0, 1) with 53 random bits. */
    double nextDouble() {
        return (nextLong() >>> 11) * 0x1.0p-53;
    }

    double uniform(double lo, double hi) {
        return lo + (hi - lo) * nextDouble();
    }

    boolean nextBoolean() {
        return nextLong() < 0;
    }

    double nextGaussian() {
        if (hasSpare) {
            hasSpare = false;
            return spare;
        }
        double u1 = 1.0 - nextDouble(); // (0, 1]: log stays finite
        double u2 = nextDouble();
        double r = StrictMath.sqrt(-2.0 * StrictMath.log(u1));
        double a = 2.0 * StrictMath.PI * u2;
        spare = r * StrictMath.sin(a);
        hasSpare = true;
        return r * StrictMath.cos(a);
    }
}
