package dev.sa2va.mllm;

import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;

/** Paths of the phase-1 fixtures under src/test/resources/dev/sa2va/mllm (tokenizer, tiling, tiny). */
final class Fixtures {
    private Fixtures() {
    }

    static Path dir(String name) {
        URL u = Fixtures.class.getResource("/dev/sa2va/mllm/" + name);
        if (u == null) {
            throw new IllegalStateException("test fixture folder dev/sa2va/mllm/" + name + " not on the class path");
        }
        try {
            return Path.of(u.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
