package dev.sa2va.core;

/**
 * Stage boundaries of a forward pass, for diagnostics (e.g. the GPU memory trace of
 * {@code dev.sa2va.bench.MemoryTrace}, which reads the caching allocator's statistics at every mark). Models call
 * {@link #mark} after each stage (a Hiera block, the FPN neck, the mask decoder, ...); without a listener a mark
 * is one volatile read. The listener runs on the forward pass's thread, at the point where the stage's own
 * intermediates have been freed, so "allocated now" at a mark is what the stage leaves behind.
 */
public final class StageMarks {
    private StageMarks() {
    }

    /** Receives stage names ("sam2.trunk.block.3", ...). */
    @FunctionalInterface
    public interface Listener {
        void mark(String stage);
    }

    private static volatile Listener listener;

    /** Installs {@code l} (null removes it); returns the previous listener. */
    public static Listener set(Listener l) {
        Listener old = listener;
        listener = l;
        return old;
    }

    /** Reports the end of {@code stage} to the listener, if there is one. */
    public static void mark(String stage) {
        Listener l = listener;
        if (l != null) {
            l.mark(stage);
        }
    }

    /** Whether a listener is installed (to skip building stage names in loops when nobody listens). */
    public static boolean active() {
        return listener != null;
    }
}
