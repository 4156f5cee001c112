package dev.sa2va.core;

/**
 * JavaCPP settings this library changes by default, applied from the static initialisers of its entry classes
 * ({@link Devices}, {@link Torch}, {@link TensorCheck}, the model and weight classes) before any JavaCPP
 * {@code Pointer} class is initialised, because JavaCPP reads them once, in {@code Pointer}'s static initialiser.
 *
 * <p>{@code org.bytedeco.javacpp.maxPhysicalBytes=0}: JavaCPP otherwise reads the process's resident memory
 * ({@code /proc/self/statm}, one system call) on <em>every</em> registration of an object that owns native
 * memory, and calls {@code System.gc()} and sleeps 100 ms (up to 10 times) when it exceeds the limit. Every libtorch
 * op returns such an object (a SAM2-L forward pass makes ~1300), so the check is the largest part of the Java-side
 * cost of an op, and its GC heuristic is not needed here: this library frees intermediates deterministically
 * with {@code PointerScope}s and {@code close()}. {@code maxBytes} (a counter compare, no system call, and the
 * out-of-memory guard for JavaCPP-allocated host buffers) is left at JavaCPP's default.
 *
 * <p>A value the user set ({@code -Dorg.bytedeco.javacpp.maxPhysicalBytes=...}, either spelling JavaCPP accepts)
 * is never changed. Code that touches JavaCPP before any class of this library (e.g. creates a {@code Tensor}
 * itself first) gets JavaCPP's defaults; {@link #inEffect()} tells which happened.
 */
public final class JavaCppDefaults {
    /** The property JavaCPP reads last (and so the one that wins over the lower-case spelling). */
    public static final String MAX_PHYSICAL_BYTES = "org.bytedeco.javacpp.maxPhysicalBytes";
    private static final String MAX_PHYSICAL_BYTES_LOWER = "org.bytedeco.javacpp.maxphysicalbytes";

    private static volatile boolean applied;

    private JavaCppDefaults() {
    }

    /**
     * Sets the defaults unless the user set the properties. Idempotent and cheap; must not touch any JavaCPP class
     * (that would initialise {@code Pointer} before the property is set).
     */
    public static void apply() {
        if (applied) {
            return;
        }
        synchronized (JavaCppDefaults.class) {
            if (!applied) {
                if (isBlank(System.getProperty(MAX_PHYSICAL_BYTES))
                        && isBlank(System.getProperty(MAX_PHYSICAL_BYTES_LOWER))) {
                    System.setProperty(MAX_PHYSICAL_BYTES, "0");
                }
                applied = true;
            }
        }
    }

    /** Whether JavaCPP runs without the per-object resident-memory check (this default, or the user's own 0). */
    public static boolean inEffect() {
        return org.bytedeco.javacpp.Pointer.maxPhysicalBytes() == 0;
    }

    private static boolean isBlank(String s) {
        return s == null || s.isEmpty();
    }
}
