package dev.sa2va.mllm;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;

/**
 * A {@link PointerScope} whose results can escape to the enclosing scope. Every libtorch call allocates Java
 * handles whose native size the garbage collector cannot see, so intermediate activations (hundreds of MB of
 * GPU memory at Sa2VA sizes) would otherwise live until some later GC; each forward step frees them here, at
 * the end of the step, and hands only its outputs on.
 *
 * <pre>{@code
 * try (Scope s = new Scope()) {
 *     Tensor h = ...many ops...;
 *     return s.keep(h);          // survives s; owned by the caller's scope, if there is one
 * }
 * }</pre>
 */
final class Scope implements AutoCloseable {
    private final PointerScope outer;
    private final PointerScope inner;

    Scope() {
        outer = PointerScope.getInnerScope();
        inner = new PointerScope();
    }

    /**
     * Lets {@code p} outlive this scope: it joins the enclosing scope, or, without one, stays until the caller
     * closes it (or the garbage collector collects it).
     */
    <P extends Pointer> P keep(P p) {
        if (outer != null) {
            outer.attach(p);
        } else {
            p.retainReference();
        }
        return p;
    }

    @Override
    public void close() {
        inner.close();
    }

    /**
     * Makes a long-lived object (a weight) independent of whatever scope is open while it is created; release it
     * with {@link Pointer#close()} (which drops this extra reference) when its owner is closed.
     */
    static <P extends Pointer> P pin(P p) {
        return p.retainReference();
    }
}
