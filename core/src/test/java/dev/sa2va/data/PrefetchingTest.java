package dev.sa2va.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.core.Torch;
import java.io.IOException;
import java.util.Collections;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class PrefetchingTest {
    /** Synthetic samples, except that index 3 fails; records which indices were loaded. */
    static final class Recording implements SampleSource {
        final SyntheticSource inner = new SyntheticSource(SyntheticFundus.Config.defaults().withSize(48, 48), 6, 8);
        final Set<Integer> loaded = Collections.synchronizedSet(new HashSet<>());

        @Override
        public String name() {
            return "recording";
        }

        @Override
        public int size() {
            return inner.size();
        }

        @Override
        public String id(int i) {
            return inner.id(i);
        }

        @Override
        public Sample load(int i) throws IOException {
            loaded.add(i);
            if (i == 3) {
                throw new IOException("cannot read sample 3");
            }
            return inner.load(i);
        }
    }

    @Test
    void returnsTheSameSamplesAndTheSameErrors() throws Exception {
        Recording src = new Recording();
        try (Prefetching p = new Prefetching(src, 2, 3)) {
            for (int i : new int[] {0, 1, 2, 4, 5, 7, 6, 0}) {
                Sample got = p.load(i), want = src.inner.load(i);
                assertEquals(want.id(), got.id());
                assertArrayEquals(Torch.toBytes(want.image()), Torch.toBytes(got.image()), "sample " + i);
                assertArrayEquals(Torch.toBytes(want.mask()), Torch.toBytes(got.mask()));
            }
            IOException e = assertThrows(IOException.class, () -> p.load(3));
            assertEquals("cannot read sample 3", e.getMessage());
            assertTrue(src.loaded.contains(3));
            assertThrows(IndexOutOfBoundsException.class, () -> p.load(8));
        }
    }
}
