package dev.sa2va.sam2;

import java.util.List;
import java.util.function.Function;
import java.util.function.Supplier;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

/**
 * Native lifetime of intermediate tensors. The GC does not see the device memory behind a JavaCPP tensor, so a
 * forward pass that leaves its intermediates to the GC holds all of them (48 Hiera blocks' worth) until some
 * collection happens: peak memory would be the sum of every activation. Each block therefore runs in its own
 * {@link PointerScope}; only its result survives, handed over to the caller's scope (or, without one, left to the
 * GC like any other tensor).
 */
final class Scoped {
    private Scoped() {
    }

    /** Runs {@code body} in a fresh scope; the returned tensor survives it. */
    static Tensor tensor(Supplier<Tensor> body) {
        return call(body, List::of);
    }

    /** Runs {@code body} in a fresh scope; the tensors listed by {@code survivors} survive it. */
    static <R> R call(Supplier<R> body, Function<R, List<? extends Pointer>> survivors) {
        R result;
        List<? extends Pointer> keep;
        try (PointerScope scope = new PointerScope()) {
            result = body.get();
            keep = survivors.apply(result);
            for (Pointer p : keep) {
                p.retainReference();
            }
        }
        PointerScope outer = PointerScope.getInnerScope();
        if (outer != null) {
            for (Pointer p : keep) {
                outer.attach(p);
                p.releaseReference();
            }
        }
        return result;
    }

    /**
     * Takes a long-lived tensor (weights, precomputed encodings) out of any scope it was created in, so that a
     * model built inside a caller's scope keeps its weights after that scope closes.
     */
    static <T extends Pointer> T own(T p) {
        PointerScope s = PointerScope.getInnerScope();
        if (s != null) {
            p.retainReference();
            s.detach(p);
        }
        return p;
    }
}
