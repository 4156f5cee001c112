package dev.sa2va.examples;

import dev.sa2va.model.ByteTokenizer;
import dev.sa2va.model.Sa2VA;
import dev.sa2va.model.Sa2vaArchitecture;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The {@code --model} argument of the examples: a Sa2VA model folder, or {@code random:NAME[:SEED]} for random weights
 * at the dimensions of {@link Sa2vaArchitecture#byName} (sa2va-1b, sa2va-4b, tiny) with the byte-level stand-in
 * tokenizer, built on the device (no files). A folder without {@code tokenizer.json} gets the stand-in tokenizer
 * only with {@code byteTokenizer} (random-weight folders such as the GPU host's reference checkpoints).
 */
final class ModelSpec {
    static final String RANDOM = "random:";

    private ModelSpec() {
    }

    static boolean isRandom(String spec) {
        return spec.startsWith(RANDOM);
    }

    static Sa2VA open(String spec, Sa2VA.Options o, boolean byteTokenizer) throws IOException {
        if (isRandom(spec)) {
            String[] p = spec.substring(RANDOM.length()).split(":");
            long seed = p.length > 1 ? Long.parseLong(p[1]) : 1;
            return Sa2VA.random(Sa2vaArchitecture.byName(p[0]), seed, o);
        }
        Path dir = Path.of(spec);
        if (byteTokenizer && !Files.isRegularFile(dir.resolve("tokenizer.json"))) {
            o = o.withTokenizer(ByteTokenizer.forModel(dir));
        }
        return Sa2VA.load(dir, o);
    }
}
