package dev.sa2va.data;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * A dataset as an indexed list of samples that are read (or generated) only when asked for, one at a time, so a
 * dataset never has to fit in memory and one unreadable file fails one sample, not the listing.
 */
public interface SampleSource extends Iterable<Sample> {
    /** What this is, for reports: e.g. "DRIVE test (1st_manual)". */
    String name();

    int size();

    /** The id of sample {@code index} without loading it (for failure reports). */
    String id(int index);

    /**
     * Loads sample {@code index}.
     *
     * @throws IOException naming the file when a file is missing, unreadable, or sizes do not match
     */
    Sample load(int index) throws IOException;

    /** Loads every sample in order; an {@link IOException} surfaces as {@link UncheckedIOException}. */
    @Override
    default Iterator<Sample> iterator() {
        return new Iterator<>() {
            private int next;

            @Override
            public boolean hasNext() {
                return next < size();
            }

            @Override
            public Sample next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                try {
                    return load(next++);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
        };
    }

    default Stream<Sample> stream() {
        return IntStream.range(0, size()).mapToObj(i -> {
            try {
                return load(i);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    default void checkIndex(int index) {
        if (index < 0 || index >= size()) {
            throw new IndexOutOfBoundsException("sample index " + index + " out of range [0, " + size() + ") of "
                    + name());
        }
    }
}
