package dev.sa2va.eval;

import java.util.Locale;

/**
 * A segmenter ran out of (device or host) memory: retryable with a smaller memory setting. Segmenters may throw it
 * themselves; {@link #matches} also recognises libtorch's allocator errors, which reach Java as
 * {@code RuntimeException}s carrying the C++ message, and the JVM's {@link OutOfMemoryError}.
 */
public class OutOfMemoryFailure extends Exception {
    public OutOfMemoryFailure(String message) {
        super(message);
    }

    public OutOfMemoryFailure(String message, Throwable cause) {
        super(message, cause);
    }

    /**
     * True when {@code t} or one of its causes is an out-of-memory failure: this class, {@link OutOfMemoryError},
     * or a message of libtorch's CUDA caching allocator ("CUDA out of memory. Tried to allocate ...") or CPU
     * allocator ("DefaultCPUAllocator: can't allocate memory: ..." / "... not enough memory ..."), or CUDA's own
     * "out of memory" error string.
     */
    public static boolean matches(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (c instanceof OutOfMemoryFailure || c instanceof OutOfMemoryError) {
                return true;
            }
            String m = c.getMessage();
            if (m != null) {
                String s = m.toLowerCase(Locale.ROOT);
                if (s.contains("out of memory") || s.contains("can't allocate memory")
                        || s.contains("cannot allocate memory") || s.contains("not enough memory")) {
                    return true;
                }
            }
        }
        return false;
    }
}
