package dev.sa2va.data;

import java.io.IOException;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Loads the next samples of a source on background threads while the current one is being evaluated, so decoding
 * large images or generating synthetic ones does not count against a model's throughput. Sequential access (as
 * the evaluator does) hits the prefetched samples; any other index is loaded on demand.
 *
 * <p>The wrapped source must allow concurrent {@link SampleSource#load} of different indices (the sources in this
 * package do). Tensors of prefetched samples are made on worker threads, outside the caller's PointerScope, and are
 * freed by the garbage collector. {@link #close()} stops the workers.
 */
public final class Prefetching implements SampleSource, AutoCloseable {
    private final SampleSource inner;
    private final int ahead;
    private final ExecutorService pool;
    private final Map<Integer, Future<Sample>> pending = new HashMap<>();

    /**
     * @param threads worker threads (>= 1)
     * @param ahead   how many samples beyond the requested one to keep in flight (>= 1)
     */
    public Prefetching(SampleSource inner, int threads, int ahead) {
        if (threads < 1 || ahead < 1) {
            throw new IllegalArgumentException("threads and ahead must be >= 1, got " + threads + " and " + ahead);
        }
        this.inner = inner;
        this.ahead = ahead;
        AtomicInteger n = new AtomicInteger();
        this.pool = Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, "sa2va-prefetch-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    @Override
    public String name() {
        return inner.name();
    }

    @Override
    public int size() {
        return inner.size();
    }

    @Override
    public String id(int index) {
        return inner.id(index);
    }

    @Override
    public synchronized Sample load(int index) throws IOException {
        checkIndex(index);
        Future<Sample> f = pending.remove(index);
        // drop what is behind the reader, queue what is ahead of it
        Iterator<Map.Entry<Integer, Future<Sample>>> it = pending.entrySet().iterator();
        while (it.hasNext()) {
            Map.Entry<Integer, Future<Sample>> e = it.next();
            if (e.getKey() < index || e.getKey() > index + ahead) {
                e.getValue().cancel(false);
                it.remove();
            }
        }
        for (int j = index + 1; j <= Math.min(size() - 1, index + ahead); j++) {
            if (!pending.containsKey(j)) {
                int k = j;
                pending.put(j, pool.submit(() -> inner.load(k)));
            }
        }
        if (f == null) {
            return inner.load(index);
        }
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while loading " + inner.id(index), e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof IOException io) {
                throw io;
            }
            if (c instanceof RuntimeException re) {
                throw re;
            }
            throw new IOException(c);
        }
    }

    @Override
    public void close() {
        pool.shutdownNow();
    }
}
